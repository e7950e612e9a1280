"""The one safe reader of weight files, strict loading, and conversion to ``.safetensors``.

The security rule lives here and nowhere else: never unpickle code. ``.safetensors`` files are read by
safetensors; ``.ckpt``/``.pth``/``.pt``/``.bin`` go through ``torch.load(weights_only=True)``, which only
rebuilds tensors and plain containers and raises on anything else — a malicious pickle is refused, never
executed, and the refusal says which global it tried to load and what to do instead. Every loader of the
pack (checkpoints, StyleCrafter adapter/temporal files, depth estimators, ...) reads through
:func:`read_weights` and loads through :func:`load_strict`. Writes are atomic (temporary file + rename), so a
failed conversion leaves no partial file behind.
"""
from __future__ import annotations

import io
import os
import pickletools
import re
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .layout import CheckpointLayoutError, unwrap_state_dict

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DISALLOWED_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")
_UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*([^\n]+)")
# Globals a weights file legitimately names (torch's weights-only unpickler rebuilds exactly these kinds).
_WEIGHTS_GLOBALS = ("torch.", "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.bytearray",
                    "_codecs.encode", "numpy.core.multiarray._reconstruct", "numpy.dtype", "numpy.ndarray")
_STRING_OPCODES = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
                   "STRING"}
_SCAN_BYTES = 16 * 1024 * 1024  # the pickles of a legacy file come first; storage bytes follow


def pickle_globals(path: str, allowed_prefixes: tuple[str, ...] = _WEIGHTS_GLOBALS) -> list[str]:
    """``module.name`` of every global the file's pickle would import beyond what weights need.

    Read with :func:`pickletools.genops`, which only decodes opcodes: nothing is imported or called. A torch
    zip file keeps its pickle in ``*/data.pkl``; a legacy file starts with its pickles (raw storage bytes
    follow, where decoding stops). ``STACK_GLOBAL`` (protocol 4+) takes module and name from the two strings
    pushed before it (directly or through the memo).
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("data.pkl")]
                data = archive.read(names[0]) if names else b""
        else:
            with open(path, "rb") as handle:
                data = handle.read(_SCAN_BYTES)
    except OSError:
        return []
    found, stream = [], io.BytesIO(data)
    while stream.tell() < len(data):
        strings, memo = [], {}
        try:
            for opcode, argument, _ in pickletools.genops(stream):
                if opcode.name in _STRING_OPCODES:
                    strings.append(argument)
                elif opcode.name == "MEMOIZE" and strings:
                    memo[len(memo)] = strings[-1]
                elif opcode.name in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
                    memo[argument] = strings[-1]
                elif opcode.name in ("BINGET", "LONG_BINGET", "GET") and argument in memo:
                    strings.append(memo[argument])
                elif opcode.name in ("GLOBAL", "INST"):
                    found.append(argument.replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # noqa: BLE001 — storage bytes after the pickles, or a truncated file: stop here
            break
    return [name for name in dict.fromkeys(found) if not name.startswith(allowed_prefixes)]


def _refusal_reason(error: BaseException, path: str | None = None) -> str:
    """One clean phrase saying why torch refused a pickle, without terminal colours or torch's advice text."""
    text = _ANSI.sub("", str(error))
    found = _DISALLOWED_GLOBAL.search(text)
    if found:  # torch 2.4-2.14 phrase this differently; the global's name is what matters
        return f"it imports the disallowed global {found.group(1)}"
    found_globals = pickle_globals(path) if path is not None else []
    if found_globals:  # torch named an opcode (e.g. "Unsupported operand 149" for protocol 4), not the global
        return f"it imports the disallowed global {', '.join(found_globals)}"
    found = _UNPICKLER_ERROR.search(text)
    reason = found.group(1) if found else next((line for line in text.splitlines() if line.strip()), type(error).__name__)
    return " ".join(reason.split())[:200].split(". ")[0].rstrip(".")


def read_weights(path: str | os.PathLike, what: str = "checkpoint") -> dict:
    """The payload of a weights file (a dict), read safely; ``what`` names the file's role in errors.

    A pickle that needs anything beyond tensors and plain containers is refused with the reason (e.g.
    ``Unsupported global: GLOBAL builtins.open``) and what to do; unreadable or corrupt files get one clear
    message. The payload is returned as stored (``state_dict``/``module`` wrappers and nested dicts intact).
    """
    path = str(path)
    name = os.path.basename(path)
    is_safetensors = path.lower().endswith(SAFETENSORS_SUFFIXES)
    try:
        payload = load_file(path) if is_safetensors else torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise CheckpointLayoutError(f"the {what} file '{path}' does not exist.") from error
    except Exception as error:  # UnpicklingError, zip and safetensors header errors: one clear message each
        if "WeightsUnpickler" in str(error) or "weights_only" in str(error):  # torch's refusal of a code pickle
            raise CheckpointLayoutError(
                f"refused to load the {what} '{name}': it is a pickle that wants to run code, not only store "
                f"weights ({_refusal_reason(error, path)}). Nothing from it was executed. If you trust its source, convert "
                "it once to .safetensors in a separate Python session (torch.load(..., weights_only=False) then "
                "safetensors.torch.save_file), or get the .safetensors release of the file.") from error
        kind = "safetensors" if is_safetensors else "weights-only .ckpt/.pth"
        raise CheckpointLayoutError(
            f"could not read the {what} '{name}' as a {kind} file ({type(error).__name__}: "
            f"{_refusal_reason(error)}). The file may be truncated or not a weights file; download it again, or "
            "use a .safetensors copy.") from error
    if not isinstance(payload, dict):
        raise CheckpointLayoutError(f"the {what} '{name}' holds a {type(payload).__name__}, not a dict of weights.")
    return payload


def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Flat ``{key: tensor}`` of a checkpoint file: :func:`read_weights`, unwrapped (Lightning ``state_dict``,
    DeepSpeed ``module`` with its ``_forward_module.`` prefix), tensors only."""
    state = unwrap_state_dict(read_weights(path, what))
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def require_exact_keys(missing, unexpected, what: str) -> None:
    """Raise one clear error when a load left keys ``missing`` or ``unexpected`` (0 and 0 is the rule)."""
    missing, unexpected = list(missing), list(unexpected)
    if missing or unexpected:
        raise CheckpointLayoutError(
            f"the {what} weights do not fit the architecture detected from them: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}). The file is incomplete or "
            "of another model.")


def load_strict(module: torch.nn.Module, state: dict, what: str) -> torch.nn.Module:
    """``module.load_state_dict(state)`` with 0 missing / 0 unexpected keys, else :func:`require_exact_keys`'s error."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    require_exact_keys(missing, unexpected, what)
    return module


def convert_checkpoint_file(source: str | os.PathLike, destination: str | os.PathLike | None = None, *,
                            overwrite: bool = False) -> Path:
    """Write ``source`` as ``.safetensors`` (default: same folder and stem); returns the written path."""
    source = Path(source)
    destination = Path(destination) if destination is not None else source.with_suffix(".safetensors")
    if destination.resolve() == source.resolve():
        raise CheckpointLayoutError(f"'{source.name}' is already a .safetensors file")
    if destination.exists() and not overwrite:
        raise CheckpointLayoutError(f"'{destination}' exists; pass overwrite=True to replace it")
    state = read_checkpoint(source)
    if not state:
        raise CheckpointLayoutError(f"'{source}' contains no tensors")
    # safetensors refuses shared storage (e.g. tied weights): store each tensor on its own.
    state = {k: v.detach().contiguous().clone() for k, v in state.items()}
    handle, temporary = tempfile.mkstemp(prefix=".partial-", suffix=".safetensors", dir=destination.parent)
    os.close(handle)
    try:
        save_file(state, temporary, metadata={"format": "pt", "converted_from": source.name})
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination
