"""Every kind of bad input fails its own document with a one-line reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocrbatch.discovery import discover
from ocrbatch.errors import DocumentError
from ocrbatch.tools.images import load_image
from tests.badfiles import good_png, make_bad_inputs

LIMIT = 250_000_000

EXPECTED = {
    "empty": "empty file (0 bytes)",
    "truncated_png": "truncated or corrupt image data",
    "truncated_jpeg": "truncated or corrupt image data",
    "text_as_png": "not a supported image (unrecognized file format)",
    "bomb": "image too large: 100000x100000",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_bad_input_gives_its_one_line_reason(tmp_path: Path, kind: str) -> None:
    path = make_bad_inputs(tmp_path)[kind]
    with pytest.raises(DocumentError) as exc:
        load_image(str(path), max_pixels=LIMIT)
    msg = str(exc.value)
    assert msg.startswith(EXPECTED[kind]) and "\n" not in msg, msg


def test_file_that_vanished_after_discovery(tmp_path: Path) -> None:
    path = good_png(tmp_path / "gone.png")
    (batch,) = discover([str(tmp_path)])
    assert batch[0].error is None
    path.unlink()
    with pytest.raises(DocumentError, match=r"^file not found \(moved or deleted"):
        load_image(batch[0].path, max_pixels=LIMIT)


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to uid nobody, needs root")
def test_unreadable_file_as_an_unprivileged_user() -> None:
    """Root reads every file, so the check runs in a forked child that became nobody."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="ocrbatch-perm-", dir="/tmp"))
    top.chmod(0o755)  # pytest's tmp_path is private to root
    folder = top / "in"
    folder.mkdir(mode=0o755)
    path = good_png(folder / "secret.png")
    path.chmod(0o000)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            os.setgid(65534)
            os.setuid(65534)
            (batch,) = discover([str(folder)])
            try:
                load_image(str(path), max_pixels=LIMIT)
                load_msg = "loaded"
            except DocumentError as exc:
                load_msg = str(exc)
            os.write(w, f"{batch[0].error}|{load_msg}".encode())
        except BaseException as exc:  # report, never run the rest of pytest in the child
            os.write(w, f"child failed: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        result = f.read()
    os.waitpid(pid, 0)
    shutil.rmtree(top)
    assert result == (
        "permission denied: cannot read the file|permission denied: cannot read the file"
    )


def _palette_with_alpha() -> object:
    from PIL import Image

    im = Image.new("P", (20, 20), 0)
    im.putpalette([0, 0, 0, 255, 255, 255])
    im.info["transparency"] = 0  # palette entry 0 (black) is fully transparent
    return im


def test_modes_are_normalized(tmp_path: Path) -> None:
    from PIL import Image

    cases = {
        "cmyk.jpg": Image.new("CMYK", (20, 20), (0, 0, 0, 0)),
        "pal_alpha.png": _palette_with_alpha(),
        "sixteen.png": Image.new("I;16", (20, 20), 1000),
        "bilevel.png": Image.new("1", (20, 20), 1),
    }
    for name, im in cases.items():
        im.save(tmp_path / name)  # type: ignore[attr-defined]
        out = load_image(str(tmp_path / name), max_pixels=LIMIT)
        assert out.mode in ("1", "L", "RGB"), (name, out.mode)
    # transparent pixels become white paper, not black
    assert load_image(str(tmp_path / "pal_alpha.png"), max_pixels=LIMIT).getpixel((0, 0)) == (
        255,
        255,
        255,
    )
