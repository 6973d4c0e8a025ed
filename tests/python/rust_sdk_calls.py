"""Finds the AWS SDK for Rust operations that Rust sources call, by reading the source text.

An SDK operation is a zero-argument fluent call on a client, e.g.

    self.client
        .put_object()
        .bucket(bucket)

`scan` first finds the names that hold an AWS SDK client, from their types:

- fields, parameters and typed `let`s: `client: aws_sdk_s3::Client`, `sqs: &aws_sdk_sqs::Client`,
  or `client: Client` in a file that imports `aws_sdk_sqs::Client` (aliases with `as` included);
- `let` bindings initialised from `aws_sdk_X::Client::new(..)` / `::from_conf(..)`;
- accessors returning a client: `fn client(&self) -> &aws_sdk_s3::Client` (matched as `client()`).

A field or binding is in scope in its own file and in the files of the modules below it (a child
module sees its ancestors' private fields: `s3/sink.rs` uses the `client` field declared in
`s3/mod.rs`). Accessors are methods, callable anywhere. Then every `<name>.<op>()` /
`<name>().<op>()` is an operation call, except the client's own methods that are not operations
(`clone`, `config`).

This reads text, not a syntax tree: it does not follow clients through type inference or
closures, and comments count as code.
"""

import re
from dataclasses import dataclass
from pathlib import Path

# The SDK crates whose clients are looked for, by the service name used in IAM actions.
SDK_CRATES = {"aws_sdk_s3": "s3", "aws_sdk_sqs": "sqs", "aws_sdk_secretsmanager": "secretsmanager"}

# Methods of an SDK client that send nothing.
CLIENT_METHODS_THAT_ARE_NOT_OPERATIONS = frozenset({"clone", "config"})

_CRATE = "|".join(SDK_CRATES)
_USE_CLIENT = re.compile(rf"\buse\s+({_CRATE})::(Client\b(?:\s+as\s+(\w+))?|\{{[^}}]*\}})")
_IN_BRACES = re.compile(r"\bClient\b(?:\s+as\s+(\w+))?")
_WRAPPERS = r"(?:(?:&\s*(?:'\w+\s+)?(?:mut\s+)?)|(?:(?:std::sync::)?(?:Option|Arc|Rc|Box)\s*<\s*))*"


@dataclass(frozen=True)
class SdkCall:
    service: str  # "s3", "sqs", "secretsmanager"
    operation: str  # the SDK's snake_case operation name, e.g. "put_object"
    file: str  # relative to the scan root
    line: int

    def __str__(self) -> str:
        return f"{self.service} {self.operation} ({self.file}:{self.line})"


def _client_types(text: str) -> dict[str, str]:
    """A regex for the client types `text` can name, by service: the full path, and the names
    under which the file imports a client."""
    types = {service: [rf"{crate}::Client\b"] for crate, service in SDK_CRATES.items()}
    for match in _USE_CLIENT.finditer(text):
        imported = match.group(2)
        if imported.startswith("{"):
            names = [m.group(1) or "Client" for m in _IN_BRACES.finditer(imported)]
        else:
            names = [match.group(3) or "Client"]
        types[SDK_CRATES[match.group(1)]] += [rf"\b{re.escape(n)}\b" for n in names]
    return {service: "|".join(alternatives) for service, alternatives in types.items()}


def _bindings(text: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(fields and variables, accessor methods) holding a client in `text`, with their services."""
    names: dict[str, set[str]] = {}
    accessors: dict[str, set[str]] = {}
    for service, client in _client_types(text).items():
        typed = re.compile(rf"\b(\w+)\s*:\s*{_WRAPPERS}(?:{client})")
        built = re.compile(rf"\blet\s+(?:mut\s+)?(\w+)\s*=\s*(?:{client})\s*::\s*(?:new|from_conf)\b")
        returned = re.compile(rf"\bfn\s+(\w+)\s*(?:<[^>]*>)?\s*\([^)]*\)\s*->\s*{_WRAPPERS}(?:{client})")
        for pattern, table in ((typed, names), (built, names), (returned, accessors)):
            for match in pattern.finditer(text):
                table.setdefault(match.group(1), set()).add(service)
    return names, accessors


def _module_file(directory: Path, src: Path) -> Path | None:
    """The file that declares the module whose files live in `directory`."""
    if directory == src:
        candidates = [src / "lib.rs", src / "main.rs"]
    else:
        candidates = [directory / "mod.rs", directory.parent / f"{directory.name}.rs"]
    return next((c for c in candidates if c.is_file()), None)


def _ancestors(path: Path, src: Path) -> list[Path]:
    """The files of the modules enclosing `path`'s module, innermost first, up to the crate root."""
    chain: list[Path] = []
    current = path
    while not (current.parent == src and current.name in ("lib.rs", "main.rs")):
        # src/a/mod.rs and src/a.rs declare module a, whose parent is declared by the file of
        # the directory above; src/a/b.rs declares a::b, whose parent is the file of src/a.
        directory = current.parent.parent if current.name == "mod.rs" else current.parent
        if not directory.is_relative_to(src):
            break
        parent = _module_file(directory, src)
        if parent is None or parent == current or parent in chain:
            break
        chain.append(parent)
        current = parent
    return chain


def scan(root: Path, source_dirs: list[str]) -> list[SdkCall]:
    """Every SDK operation call in the `.rs` files under `root/<dir>` for each of `source_dirs`
    (each a crate's `src`). A client method that is neither an operation nor known not to be one
    is still returned: mapping it is the caller's decision."""
    files: dict[Path, str] = {}
    src_of: dict[Path, Path] = {}
    for directory in source_dirs:
        src = root / directory
        for path in sorted(src.rglob("*.rs")):
            files[path] = path.read_text()
            src_of[path] = src
    local = {path: _bindings(text) for path, text in files.items()}
    accessors: dict[str, set[str]] = {}
    for _, methods in local.values():
        for name, services in methods.items():
            accessors.setdefault(name, set()).update(services)

    calls = []
    for path, text in files.items():
        # Innermost declaration wins: the file's own, then its parent module's, and so on.
        in_scope: dict[str, set[str]] = {}
        for scope in [path, *_ancestors(path, src_of[path])]:
            for name, services in local.get(scope, ({}, {}))[0].items():
                in_scope.setdefault(name, services)
        receivers = [(rf"\b{re.escape(n)}\b(?!\s*\()", s) for n, s in in_scope.items()]
        receivers += [(rf"\b{re.escape(n)}\s*\(\s*\)", s) for n, s in accessors.items()]
        # Plain copies: `let s3 = stack.s3().clone();`, `let client = &self.client;`.
        for receiver, services in list(receivers):
            copy = rf"\blet\s+(?:mut\s+)?(\w+)\s*=\s*&?\s*(?:[\w.]*\.)?{receiver}\s*(?:\.\s*clone\s*\(\s*\))?\s*;"
            for match in re.finditer(copy, text):
                receivers.append((rf"\b{re.escape(match.group(1))}\b(?!\s*\()", services))
        for receiver, services in receivers:
            for match in re.finditer(rf"(?<![\w:]){receiver}\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)", text):
                operation = match.group(1)
                if operation in CLIENT_METHODS_THAT_ARE_NOT_OPERATIONS:
                    continue
                line = text.count("\n", 0, match.start(1)) + 1
                for service in sorted(services):
                    calls.append(SdkCall(service, operation, path.relative_to(root).as_posix(), line))
    return sorted(set(calls), key=lambda c: (c.file, c.line, c.service, c.operation))
