"""Measure constants and structure layouts from the real Windows headers shipped by MinGW-w64.

Nothing is executed on Windows: a C probe is compiled with ``x86_64-w64-mingw32-gcc -S`` and the
values are read back from the generated assembly.

* Every value (constant, ``sizeof``, ``offsetof``) is the immediate operand of an inline-asm
  ``.ascii "@@KEY=a:b:c@@"`` marker. The value is split into 24/24/16-bit chunks, because a
  single ``"i"`` operand printed with ``%c`` is rejected for anything that is not a
  sign-extended 32-bit immediate (``0xFC01020B`` fails otherwise).
* A bit field is located by a global ``const`` object of its structure in which only that field
  is set to ``-1``: the data directives that follow its label in the ``.s`` file give the bytes,
  and the single run of ones gives the absolute bit position and the width.
* A name or member the headers lack is a compile error at its probe line (``-ftrack-macro-
  expansion=0`` reports errors in macro expansions at the line that uses the macro). Those
  lines are blanked, their keys are recorded as absent and the probe is recompiled, a bounded
  number of times. An error anywhere else (inside a header) fails the probe.

Two header set-ups ("contexts") are used:

* ``um``: ``#define UM_NDIS630 1`` (the newest NDIS version MinGW-w64 10 knows), then
  ``<winsock2.h>`` (before ``<windows.h>``, or ``ws2ipdef.h`` lacks ``SOCKADDR_STORAGE``),
  ``<windows.h>`` and ``<ntddndis.h>``. Everything is probed here.
* ``ddk``: ``NDIS_STATUS_*`` is only defined by ``ddk/ndis.h``, which does not compile for NDIS 6
  (it redeclares ``enum _NDIS_REQUEST_TYPE`` and uses many undeclared legacy types). The probe
  is therefore only preprocessed (``-E``) against it, with every ``NDIS_SUPPORT_NDIS6xx``
  defined up front (``ddk/ndis.h`` includes ``ntddndis.h`` before deriving them, which would
  pin them to 0), and the expanded probe function alone is compiled. Only ``#ifdef``-guarded
  macro constants are probed here.

Keys: ``C:NAME`` constant, ``S:TYPE`` sizeof, ``O:TYPE.path`` offsetof, ``B:TYPE.path`` bit field,
``R:TYPE.revision`` value of the ``NDIS_SIZEOF_*_REVISION_n`` macro given for that revision.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CC = "x86_64-w64-mingw32-gcc"
CFLAGS = ("-S", "-O0", "-w", "-fmax-errors=0", "-ftrack-macro-expansion=0")
MAX_ROUNDS = 6
TIMEOUT_S = 120

_MARKER_MACRO = (
    '#define P(key, val) __asm__ volatile(".ascii \\"@@" key "=%c0:%c1:%c2@@\\"" :: '
    '"i"((long long)(((unsigned long long)(long long)(val)) & 0xFFFFFFull)), '
    '"i"((long long)((((unsigned long long)(long long)(val)) >> 24) & 0xFFFFFFull)), '
    '"i"((long long)((((unsigned long long)(long long)(val)) >> 48) & 0xFFFFull)));'
)
_MARKER_RE = re.compile(r"@@([^=@\"]+)=(\d+):(\d+):(\d+)@@")
_ERROR_RE = re.compile(r"^(.*?):(\d+):\d+: (?:fatal )?error: (.*)$", re.M)
_LABEL_RE = re.compile(r"^([A-Za-z_.$][\w.$]*):$")
_DATA_SIZES = {
    ".byte": 1,
    ".value": 2,
    ".word": 2,
    ".short": 2,
    ".2byte": 2,
    ".long": 4,
    ".int": 4,
    ".4byte": 4,
    ".quad": 8,
    ".8byte": 8,
}

UM_PRELUDE = (
    "#define UM_NDIS630 1",
    "#include <winsock2.h>",
    "#include <windows.h>",
    "#include <ntddndis.h>",
    "#include <stddef.h>",
)
DDK_PRELUDE = (
    "#define NDIS_SUPPORT_NDIS6 1",
    "#define NDIS_SUPPORT_NDIS61 1",
    "#define NDIS_SUPPORT_NDIS620 1",
    "#define NDIS_SUPPORT_NDIS630 1",
    "#define NDIS_MINIPORT_DRIVER 1",
    "#define NDIS620_MINIPORT 1",
    "#include <ntddk.h>",
    "#include <ndis.h>",
)
# What the expanded NDIS_STATUS_* macros still refer to once the headers are cut away.
DDK_TYPEDEFS = (
    "typedef long LONG; typedef LONG NTSTATUS; typedef int NDIS_STATUS; "
    "typedef unsigned long ULONG; typedef unsigned short USHORT; typedef unsigned char UCHAR;\n"
)


class ProbeError(RuntimeError):
    """The probe could not be built for a reason other than a missing name or member."""


@dataclass(frozen=True)
class Toolchain:
    cc: str
    include_dir: Path


@dataclass(frozen=True)
class ProbeRequest:
    """What to measure: everything is keyed as described in the module docstring."""

    constants: tuple[str, ...]
    types: tuple[str, ...]
    offsets: tuple[str, ...]  # "TYPE.path"
    bits: tuple[str, ...]  # "TYPE.path"
    revision_macros: Mapping[str, str] = field(default_factory=dict)  # "TYPE.rev" -> macro


@dataclass
class ContextResult:
    values: dict[str, int]
    bits: dict[str, tuple[int, int]]  # key -> (absolute bit, width)
    object_sizes: dict[str, int]  # bit-field key -> bytes emitted for its object
    absent: set[str]
    rounds: int


def find_toolchain() -> Toolchain | str:
    """The cross compiler and its include directory, or why they are unusable."""
    cc = shutil.which(CC)
    if cc is None:
        return (
            "MinGW-w64 cross compiler not installed: "
            "apt-get install gcc-mingw-w64-x86-64 mingw-w64-x86-64-dev"
        )
    try:
        r = subprocess.run(
            [cc, "-xc", "-E", "-v", "-"],
            input="",
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{CC} does not run: {exc}"
    search = r.stderr.split("#include <...> search starts here:", 1)[-1]
    search = search.split("End of search list.", 1)[0]
    for line in search.splitlines():
        d = Path(line.strip())
        if (d / "ntddndis.h").is_file() and (d / "ddk" / "ndis.h").is_file():
            return Toolchain(cc, d.resolve())
    return (
        "MinGW-w64 headers ntddndis.h and ddk/ndis.h not found in the include path of "
        f"{CC}: apt-get install mingw-w64-x86-64-dev"
    )


@dataclass
class _Source:
    lines: list[str] = field(default_factory=list)
    keys: dict[int, str] = field(default_factory=dict)  # 1-based line -> key

    def add(self, text: str, key: str | None = None) -> None:
        assert "\n" not in text
        self.lines.append(text)
        if key is not None:
            self.keys[len(self.lines)] = key

    def render(self, drop: set[str]) -> str:
        out = ["" if self.keys.get(i) in drop else line for i, line in enumerate(self.lines, 1)]
        return "\n".join(out) + "\n"


def _split(path: str) -> tuple[str, str]:
    type_name, _, member = path.partition(".")
    return type_name, member


def _build_source(
    prelude: Iterable[str], req: ProbeRequest, *, guard_constants: bool, layouts: bool
) -> tuple[_Source, dict[str, str]]:
    src = _Source()
    for line in prelude:
        src.add(line)
    src.add(_MARKER_MACRO)
    src.add("void __probe(void) {")
    for name in req.constants:
        if guard_constants:
            src.add(f"#ifdef {name}")
        # Enumerators cannot be #ifdef'd: if one is undeclared, pruning removes the line.
        src.add(f'P("C:{name}", {name})', f"C:{name}")
        if guard_constants:
            src.add("#endif")
    for key, macro in req.revision_macros.items():
        if guard_constants:
            src.add(f"#ifdef {macro}")
        src.add(f'P("R:{key}", {macro})', f"R:{key}")
        if guard_constants:
            src.add("#endif")
    if layouts:
        for t in req.types:
            src.add(f'P("S:{t}", sizeof({t}))', f"S:{t}")
        for path in req.offsets:
            t, member = _split(path)
            src.add(f'P("O:{path}", __builtin_offsetof({t}, {member}))', f"O:{path}")
    src.add("}")
    objects: dict[str, str] = {}
    if layouts:
        for i, path in enumerate(req.bits):
            t, member = _split(path)
            obj = f"probe_bf_{i}"
            objects[obj] = f"B:{path}"
            src.add(f"const {t} {obj} = {{ .{member} = -1 }};", f"B:{path}")
    return src, objects


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ProbeError(f"timed out: {' '.join(cmd)}") from exc


def _parse_markers(asm: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for m in _MARKER_RE.finditer(asm):
        v = int(m.group(2)) | int(m.group(3)) << 24 | int(m.group(4)) << 48
        values[m.group(1)] = v - (1 << 64) if v >= 1 << 63 else v
    return values


def _parse_objects(asm: str, objects: Mapping[str, str]) -> dict[str, bytes]:
    """The initialised bytes of each named global object, from its data directives."""
    data: dict[str, bytearray] = {}
    current: bytearray | None = None
    for raw in asm.splitlines():
        line = raw.strip()
        label = _LABEL_RE.match(line)
        if label:
            current = (
                data.setdefault(label.group(1), bytearray()) if label.group(1) in objects else None
            )
            continue
        if current is None or not line:
            continue
        parts = line.split(None, 1)
        directive, operands = parts[0], (parts[1] if len(parts) > 1 else "")
        if directive in _DATA_SIZES:
            size = _DATA_SIZES[directive]
            for item in operands.split(","):
                current += (int(item.strip(), 0) & ((1 << 8 * size) - 1)).to_bytes(size, "little")
        elif directive in (".zero", ".space", ".skip"):
            current += bytes(int(operands.split(",")[0], 0))
        elif directive in (".align", ".p2align", ".balign"):
            continue
        else:
            current = None
    return {objects[name]: bytes(b) for name, b in data.items()}


def _error_lines(stderr: str, probe_name: str) -> tuple[set[int], list[str]]:
    """Error line numbers inside the probe file, and errors located anywhere else."""
    lines: set[int] = set()
    foreign: list[str] = []
    for m in _ERROR_RE.finditer(stderr):
        if Path(m.group(1)).name == probe_name:
            lines.add(int(m.group(2)))
        else:
            foreign.append(m.group(0))
    return lines, foreign


def probe_context(tc: Toolchain, workdir: Path, name: str, req: ProbeRequest) -> ContextResult:
    """Compile one context with error-driven pruning and read back every value."""
    ddk = name == "ddk"
    src, objects = _build_source(
        DDK_PRELUDE if ddk else UM_PRELUDE, req, guard_constants=ddk, layouts=not ddk
    )
    c_path = workdir / f"probe_{name}.c"
    s_path = workdir / f"probe_{name}.s"
    absent: set[str] = set()
    for round_no in range(1, MAX_ROUNDS + 1):
        c_path.write_text(src.render(absent))
        if ddk:
            i_path = workdir / f"probe_{name}.i"
            pre = _run([tc.cc, "-E", f"-I{tc.include_dir / 'ddk'}", str(c_path), "-o", str(i_path)])
            if pre.returncode:
                raise ProbeError(f"{name}: preprocessing ddk/ndis.h failed:\n{pre.stderr[-4000:]}")
            text = i_path.read_text(errors="replace")
            start = text.rfind("\n# ", 0, text.rfind("void __probe(void)"))
            if start < 0:
                raise ProbeError(f"{name}: probe function not found in the preprocessed output")
            compile_path = workdir / f"probe_{name}_body.c"
            compile_path.write_text(DDK_TYPEDEFS + text[start + 1 :])
        else:
            compile_path = c_path
        r = _run([tc.cc, *CFLAGS, str(compile_path), "-o", str(s_path)])
        if r.returncode == 0:
            asm = s_path.read_text(errors="replace")
            values = _parse_markers(asm)
            bits: dict[str, tuple[int, int]] = {}
            sizes: dict[str, int] = {}
            for key, raw in _parse_objects(asm, objects).items():
                v = int.from_bytes(raw, "little")
                low = (v & -v).bit_length() - 1
                width = v.bit_count()
                if v == 0 or v != ((1 << width) - 1) << low:
                    raise ProbeError(f"{key}: not one run of ones: {raw.hex()}")
                bits[key] = (low, width)
                sizes[key] = len(raw)
            missing = set(src.keys.values()) - absent - set(values) - set(bits)
            if missing and not ddk:
                raise ProbeError(f"{name}: compiled but no value for {sorted(missing)}")
            # ddk: a constant that is not a macro there was skipped by its #ifdef.
            return ContextResult(values, bits, sizes, absent | missing, round_no)
        lines, foreign = _error_lines(r.stderr, c_path.name)
        if foreign:
            raise ProbeError(f"{name}: errors outside the probe lines:\n" + "\n".join(foreign[:20]))
        new = {src.keys[n] for n in lines if n in src.keys} - absent
        if not new:
            raise ProbeError(f"{name}: compile failed at no probe line:\n{r.stderr[-4000:]}")
        absent |= new
    raise ProbeError(f"{name}: still failing after {MAX_ROUNDS} rounds")
