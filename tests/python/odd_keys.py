"""The odd-key corpus, events/odd-keys.txt, read exactly as the Rust tests read it
(testkit::odd_keys): escapes \\\\ \\t \\n \\r \\u{HEX}, "!repeat N TEXT", and a TAB before the
key's note ("oss-refuses: REASON; s3-refuses: REASON; oss2s3-refuses: REASON; moto-refuses: REASON")."""

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "events" / "odd-keys.txt"


@dataclass(frozen=True)
class OddKey:
    key: str
    oss_refuses: str | None
    s3_refuses: str | None
    oss2s3_refuses: str | None
    moto_refuses: str | None


def _unescape(text: str, line: int) -> str:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c != "\\":
            out.append(c)
            continue
        e = text[i]
        i += 1
        if e in "\\tnr":
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[e])
        elif e == "u":
            end = text.index("}", i)
            assert text[i] == "{", f"line {line}: \\u needs {{HEX}}"
            out.append(chr(int(text[i + 1:end], 16)))
            i = end + 1
        else:
            raise ValueError(f"line {line}: unknown escape \\{e}")
    return "".join(out)


def corpus() -> list[OddKey]:
    keys = []
    for number, line in enumerate(CORPUS.read_text(encoding="utf-8").split("\n"), start=1):
        if not line or line.startswith("#"):
            continue
        text, _, note = line.partition("\t")
        if text.startswith("!repeat "):
            n, _, unit = text[len("!repeat "):].partition(" ")
            key = _unescape(unit, number) * int(n)
        else:
            key = _unescape(text, number)

        def reason(service: str) -> str | None:
            for part in note.split("; "):
                if part.startswith(f"{service}-refuses: "):
                    return part[len(f"{service}-refuses: "):]
            return None

        keys.append(OddKey(key, reason("oss"), reason("s3"), reason("oss2s3"), reason("moto")))
    return keys
