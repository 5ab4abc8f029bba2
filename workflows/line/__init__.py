"""The straight line with outliers (``starmix run outlier-line``)."""
