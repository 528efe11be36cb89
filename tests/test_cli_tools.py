"""``pikabot generate`` with Pika's tools (``--effect``, ``--add-to``, ``--swap-in``,
``--frames``): the same core as Discord, in a real subprocess against the loopback fal.
Local files are sent inline (fal takes data URIs), a video URL is probed first, and bad input
is one line and exit code 2 with nothing reserved or sent."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.fakes._loopback import DEFAULT_VIDEO
from tests.fakes.providers import SETUPS
from tests.test_e2e_providers import PNG, env_for, generate

pytestmark = pytest.mark.e2e


def files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "cat": tmp_path / "cat.png",
        "dog": tmp_path / "dog.png",
        "clip": tmp_path / "clip.mp4",
        "notes": tmp_path / "notes.mp4",
    }
    made["cat"].write_bytes(PNG)
    made["dog"].write_bytes(PNG)
    made["clip"].write_bytes(DEFAULT_VIDEO)
    made["notes"].write_text("not a video at all")
    return made


def data_uri_bytes(value: str) -> bytes:
    return base64.b64decode(value.partition(",")[2])


async def test_generate_each_tool_reaches_its_endpoint(tmp_path: Path):
    """Each flag makes its tool's request: local files inline, a URL probed and passed on."""
    setup = SETUPS["fal"]
    made = files(tmp_path)
    async with setup.make() as fal:
        env = env_for(setup, fal, tmp_path / "db.sqlite3")
        remote = fal.host_file("party.mp4", DEFAULT_VIDEO)
        runs = [
            ("--effect", "melt", "--image", str(made["cat"]), "--seed", "3"),
            ("a dog joins in", "--add-to", remote, "--image", str(made["dog"])),
            ("a horse", "--swap-in", str(made["clip"]), "--region", "the red car"),
            (
                "day turns to night",
                "--frames",
                str(made["cat"]),
                str(made["dog"]),
                str(made["cat"]),
                "--transition",
                "the sun sets",
                "--durations",
                "3 4",
                "--resolution",
                "1080p",
            ),
        ]
        for index, args in enumerate(runs):
            out = tmp_path / f"clip{index}.mp4"
            code, err = await generate(*args, "--out", str(out), env=env, cwd=tmp_path)
            assert code == 0, err
            assert out.read_bytes() == fal.video
        effect, add, swap, frames = fal.recorded("submit")
    assert effect.path == "/fal-ai/pika/v1.5/pikaffects"
    assert effect.json["pikaffect"] == "Melt" and effect.json["seed"] == 3
    assert data_uri_bytes(effect.json["image_url"]) == PNG
    assert add.path == "/fal-ai/pika/v2/pikadditions"
    assert add.json["video_url"] == remote and add.json["prompt"] == "a dog joins in"
    assert swap.path == "/fal-ai/pika/v2/pikaswaps"
    assert swap.json["video_url"].startswith("data:video/mp4;base64,")
    assert data_uri_bytes(swap.json["video_url"]) == DEFAULT_VIDEO
    assert swap.json["modify_region"] == "the red car"
    assert frames.path == "/fal-ai/pika/v2.2/pikaframes"
    assert frames.json["transitions"] == [
        {"duration": 3, "prompt": "the sun sets"},
        {"duration": 4},
    ]
    assert frames.json["resolution"] == "1080p" and len(frames.json["image_urls"]) == 3


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("--effect", "sparkle", "--image", "{cat}"), "Unknown effect `sparkle`"),
        (("x", "--frames", "{cat}"), "2 to 5 keyframe images"),
        (("a horse", "--swap-in", "{clip}"), "Say what to replace"),
        (("--add-to", "{notes}", "--image", "{cat}"), "not an MP4, MOV or WebM file"),
        (("--effect", "melt", "--image", "{cat}", "--aspect", "9:16"), "has no --aspect"),
        (("x", "--frames", "{cat}", "{dog}", "--durations", "30"), "1 to 10 seconds"),
        (("--add-to", "{gone}", "--image", "{cat}"), "could not open the video"),
    ],
)
async def test_generate_tool_input_errors_exit_2_and_send_nothing(
    args: tuple[str, ...], shown: str, tmp_path: Path
):
    """Bad tool input: one line naming the problem, exit 2, no request to fal."""
    setup = SETUPS["fal"]
    made = {name: str(path) for name, path in files(tmp_path).items()}
    async with setup.make() as fal:
        made["gone"] = f"{fal.url}/files/inputs/gone.mp4"
        env = env_for(setup, fal, tmp_path / "db.sqlite3")
        code, err = await generate(*(a.format(**made) for a in args), env=env, cwd=tmp_path)
        assert code == 2, err
        assert shown in err.strip().splitlines()[-1]
        assert fal.count("submit") == 0


async def test_generate_tool_refused_where_the_provider_has_none(tmp_path: Path):
    """Pixazo sells no Pika tools: exit 2, saying so, nothing sent."""
    setup = SETUPS["pixazo"]
    made = files(tmp_path)
    async with setup.make() as fake:
        env = env_for(setup, fake, tmp_path / "db.sqlite3")
        code, err = await generate(
            "--effect", "melt", "--image", str(made["cat"]), env=env, cwd=tmp_path
        )
        assert code == 2, err
        assert "PIKA_PROVIDER=pixazo does not offer Pikaffects" in err
        assert fake.requests == []
