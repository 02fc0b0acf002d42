"""Each function's deployment package as Lambda receives it: `bootstrap` zipped (deflate, as
sam deploy packages a directory), one line a function, largest last; exits 1 when one is over
the limit. Usage: sizes.py <sam build dir> [limit MB]."""
import io
import pathlib
import sys
import zipfile

build = pathlib.Path(sys.argv[1])
limit_mb = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
rows = []
for bootstrap in sorted(build.glob("*/bootstrap")):
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.write(bootstrap, "bootstrap")
    rows.append((packed.tell(), bootstrap.stat().st_size, bootstrap.parent.name))
if not rows:
    sys.exit(f"no */bootstrap under {build}: run make build")
mb = 1024 * 1024
for zipped, raw, name in sorted(rows):
    print(f"{name:<28} {raw / mb:6.1f} MB  zipped {zipped / mb:5.1f} MB")
over = [name for zipped, _, name in rows if zipped > limit_mb * mb]
largest = max(rows)
print(f"sizes: functions={len(rows)} largest_zip_mb={largest[0] / mb:.1f} ({largest[2]}) limit_mb={limit_mb:g}")
if over:
    sys.exit(f"over {limit_mb:g} MB zipped: {', '.join(over)}")
