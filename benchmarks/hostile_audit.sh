#!/usr/bin/env bash
# The hostile cases of issue 32, rerun as a user would (each prints its exit code and the
# last line it printed); the full-disk cases need root (a small tmpfs). Run from anywhere:
#   bash benchmarks/hostile_audit.sh
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=$ROOT/.venv/bin/starmix
PY=$ROOT/.venv/bin/python
FAST="--draws 200 --tune 200 --chains 2 --no-figures"
W=$(mktemp -d); cd $W
n=0
check() { n=$((n+1)); local name="$1"; shift; "$@" > out.txt 2> err.txt; rc=$?; echo "[$n] $name: exit $rc | $(grep -v '^\[starmix' err.txt | grep -v '^  \|^NUTS\|^Sampling\|^predictive\|^convergence\|^detection\|^results\|^figures' | tail -1 | cut -c1-230)"; }
$S simulate ngc6819 --n-cluster 100 --n-field 1000 --out field.fits > /dev/null
echo precious > victim; ln -s "$PWD/victim" .X.lock
check "1 planted lock link" $S run outlier-line $FAST --out X; echo "    victim: $(cat victim)"
mkdir U; echo data > U/obs.csv; echo '{}' > U/run_record.json
check "2 foreign run_record.json" $S run outlier-line $FAST --out U; echo "    U: $(ls U | tr '\n' ' ')"
$S run outlier-line $FAST --out V > /dev/null 2>&1
$PY -c "from astropy.table import Table; Table.read('V/membership.ecsv')[['x','y','y_err']].write('V/mydata.csv')"
check "3 --data inside --out" $S run outlier-line $FAST --data V/mydata.csv --out V; echo "    V: $(ls V | tr '\n' ' ')"
mkdir T; ln -s T L
check "4 symlinked --out" $S run outlier-line $FAST --out L; echo "    here: $(ls -A | tr '\n' ' ') | T: $(ls T | tr '\n' ' ')"
if mkdir -p m300 && mount -t tmpfs -o size=300k tmpfs m300 2>/dev/null; then
  check "5 full disk (300 KiB, outlier line)" $S run outlier-line $FAST --out m300/R; echo "    left: $(ls -A m300)"
  umount m300
fi
if mkdir -p m2 && mount -t tmpfs -o size=2m tmpfs m2 2>/dev/null; then
  check "5 full disk (2 MiB, pmra)" $S run cluster --model pmra --cluster NGC6819 --no-detection --data field.fits $FAST --out m2/R; echo "    left: $(ls -A m2)"
  umount m2
fi
( $S run outlier-line --draws 20000 --chains 2 --no-figures --out H > /dev/null 2> h.err; echo $? > h.rc ) & sleep 6; pkill -HUP -f "out H"; wait
n=$((n+1)); echo "[$n] 6 SIGHUP: exit $(cat h.rc) | $(tail -3 h.err | head -1) | status $(grep -o '"status": "[a-z]*"' H/run_record.json) | left: $(ls -A | grep '^\.H' | tr '\n' ' ')"
$PY - <<'PY'
from astropy.table import Table
import astropy.units as u, numpy as np
t = Table.read("field.fits")
t2 = t.copy(); t2["pmra"] = (np.asarray(t["pmra"]) * u.mas/u.yr).to(u.deg/u.yr); t2.write("deg_pm.fits", overwrite=True)
t3 = t.copy(); t3["ra"][:4] = [400, 1e308, 400, 400]; t3.write("bad_ra.fits", overwrite=True)
t4 = t.copy(); t4["dec"][:3] = 95; t4.write("bad_dec.fits", overwrite=True)
t.write("plain.csv", overwrite=True)
lines = open("plain.csv").read().splitlines()
head = lines[0].split(","); i = head.index("pmdec"); head[i] = "pmra"
open("dup.csv", "w").write("\n".join([",".join(head)] + lines[1:]) + "\n")
open("bom.csv", "w", encoding="utf-8-sig").write(open("plain.csv").read())
import shutil; shutil.copy("plain.csv", "nosuffix")
PY
RUNC="$S run cluster --cluster NGC6819 --no-detection $FAST"
check "7 pmra in deg/yr (FITS)" $RUNC --model pmra --data deg_pm.fits --out O7
check "8 ra = 400/1e308 (joint)" $RUNC --model joint --data bad_ra.fits --out O8
check "8 dec = 95" $RUNC --model joint --data bad_dec.fits --out O8b
check "9 two columns named pmra" $RUNC --model pmra --data dup.csv --out O9
check "10 --draws 1e12" $S run outlier-line --draws 1000000000000 --out O10
printf 'draws = 9223372036854775807\n' > big.toml
check "10 TOML draws = 2**63-1" $S run outlier-line --config big.toml --out O10b
check "10 --chains 100000" $S run outlier-line --chains 100000 --out O10c
check "15 BOM" $RUNC --model pmra --data bom.csv --out O15
check "16 no suffix" $RUNC --model pmra --data nosuffix --out O16
mkdir adir; mkfifo fifo; ln -s loop1 loop2; ln -s loop2 loop1
check "16 directory" $RUNC --model pmra --data adir --out O16b
check "16 FIFO" $RUNC --model pmra --data fifo --out O16c
check "16 symlink loop" $RUNC --model pmra --data loop1 --out O16d
check "16 /dev/zero" $RUNC --model pmra --data /dev/zero --out O16e
check "16 directory as --config" $S run outlier-line --config adir --out O16f
printf 'name,ra,dec,pmra,pmdec,parallax\n' > empty.csv
check "14 header-only catalogue" $S survey empty.csv --out S14 --draws 100 --tune 100 --chains 2
echo '{"status": "runn' > broken.json; mkdir S14c; cp broken.json S14c/survey_record.json
printf 'name,ra,dec,pmra,pmdec,parallax\nNGC6819,295.327,40.19,-2.916,-3.856,0.356\n' > one.csv
check "14 damaged survey_record.json" $S survey one.csv --out S14c
check "14 --memory-limit lots" $S survey one.csv --out S14d --memory-limit lots
$PY - <<'PY' 2>&1 | sed 's/^/    /'
import numpy as np, pyia, starmix
from astropy.table import Table
for name, call in [("11 fit_density mismatched", lambda: starmix.fit_density(np.ones(100), np.ones(50))),
                   ("11 load_fit damaged", lambda: starmix.load_fit("U"))]:
    try:
        call(); print(name, "-> no error")
    except Exception as err:
        print(name, "->", type(err).__name__, str(err)[:200])
PY
echo "cases: $n shell cases + 2 API cases"
