"""Sphinx configuration of the starmix documentation site (``make docs``).

The user pages are the Markdown files beside this one (read by MyST); the API reference
(``api.rst``) is generated from the docstrings of the installed ``starmix`` package by
autosummary, one page per module, into ``_autosummary/`` (git-ignored). The docstrings are
prose with reStructuredText roles, which autodoc renders as they are.
"""

import shutil
from pathlib import Path

project = "starmix"
author = "the starmix developers"
copyright = "the starmix developers"
release = version = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# docs/examples holds runnable scripts, not pages; build folders never hold sources
exclude_patterns = ["examples", "_build", "build", "**/.ipynb_checkpoints", "Thumbs.db",
                    ".DS_Store"]
nitpicky = False

# MyST: the pages' own headings are link targets (``[page](page.md#a-heading)``)
myst_heading_anchors = 3

# autosummary writes one stub per module (recursively) into _autosummary/, whose template
# (_templates/autosummary/module.rst) documents the module's own members on its page
autosummary_generate = True
autosummary_generate_overwrite = True
autosummary_imported_members = False
autosummary_ignore_module_all = True

# autodoc: members in source order; a name a package re-exports is documented only in the
# module that defines it (``ignore-module-all``), so no object is described twice
autodoc_default_options = {
    "members": True,
    "undoc-members": False,
    "show-inheritance": True,
    "ignore-module-all": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autoclass_content = "class"
# a method that overrides a PyMC one without a docstring of its own (``dist``) is left out,
# rather than shown with PyMC's docstring
autodoc_inherit_docstrings = False

# the docstrings are prose with reST roles, rendered as they are; napoleon would read a
# Google-style section (Args:, Returns:) should one appear (none does: it changes no docstring
# today), NumPy-style sections are off
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

html_theme = "alabaster"
html_title = "starmix"
html_static_path: list[str] = []
html_show_sourcelink = False



def clear_stubs(app):
    """Remove the previous build's module stubs before autosummary writes them anew: a stub
    of a module since renamed or removed would otherwise be read, and fail to import."""
    shutil.rmtree(Path(app.srcdir) / "_autosummary", ignore_errors=True)


def setup(app):
    # before autosummary's own builder-inited handler (priority 500), which writes the stubs
    app.connect("builder-inited", clear_stubs, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
