#!/usr/bin/env bash
# Build the course site into site/: the README as the guide, every notebook (with the outputs
# notebooks/run_all.py saved) as a chapter, ARCHITECTURE.md, the API reference from the
# docstrings and benchmarks/RESULTS.md. Needs the docs extra (pip install ".[docs]") and
# npm (for MathJax).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=build/site-src
rm -rf "$stage"
mkdir -p "$stage/notebooks" "$stage/assets"
cp README.md "$stage/index.md"
cp ARCHITECTURE.md "$stage/ARCHITECTURE.md"
cp benchmarks/RESULTS.md "$stage/results.md"
cp notebooks/*.ipynb "$stage/notebooks/"
cp -r notebooks/figures "$stage/notebooks/figures"
cp -r docs/api "$stage/api"
# MathJax 2 (what nbconvert's notebook pages configure), from the npm registry once into
# build/, the parts its CommonHTML output needs copied into the site: no page loads
# anything from another host.
mathjax=build/mathjax-2.7.9
if [ ! -f "$mathjax/MathJax.js" ]; then
  rm -rf "$mathjax" && mkdir -p "$mathjax"
  (cd build && npm pack --silent mathjax@2.7.9 >/dev/null)
  tar xzf build/mathjax-2.7.9.tgz -C "$mathjax" --strip-components=1 package/MathJax.js package/config/Safe.js \
    package/config/TeX-AMS_CHTML-full.js package/extensions package/jax/input/TeX package/jax/element \
    package/jax/output/CommonHTML package/jax/output/PreviewHTML package/fonts/HTML-CSS/TeX/woff
  rm build/mathjax-2.7.9.tgz
fi
cp -r "$mathjax" "$stage/assets/mathjax"
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --quiet -f docs/mkdocs.yml
echo "site/ built: $(find site -name index.html | wc -l) pages"
