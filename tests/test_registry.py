"""The model registry: lookup order, and verified downloads against a local HTTP server."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from conftest import free_port, run_cli
from edge.errors import ModelError, RegistryError
from models.registry import MODELS_DIR, load_registry, pull, resolve_model


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `body` at any path; `drop_after` bytes then hangs up (a dropped connection)."""

    body: bytes = b""
    drop_after: int | None = None

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        data = self.body if self.drop_after is None else self.body[: self.drop_after]
        self.wfile.write(data)
        self.wfile.flush()
        if self.drop_after is not None:
            self.connection.shutdown(2)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve():
    servers = []

    def start(body: bytes, drop_after: int | None = None) -> str:
        handler = type("H", (_Handler,), {"body": body, "drop_after": drop_after})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/yolox_nano.onnx"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_registry_lists_the_default_with_checksum():
    reg = load_registry()
    entry = reg.get(reg.default)
    assert entry.name == "yolox-nano" and entry.layout == "yolox" and entry.input_size == (416, 416)
    assert entry.sha256 == "e8af074932d4ed7e232278e3055cefcdea3edf178874a3694ae292649fb464dd"
    assert entry.url.startswith("https://github.com/Megvii-BaseDetection/YOLOX/releases/")
    assert len(entry.class_names()) == 80 and entry.class_names()[0] == "person"


def test_pull_verifies_and_renames_into_place(serve, yolox_path: Path, tmp_path: Path):
    entry = load_registry().get("yolox-nano")
    url = serve(yolox_path.read_bytes())
    seen = []
    path = pull(entry, tmp_path, url=url, progress=lambda got, total: seen.append((got, total)))
    assert path == tmp_path / "yolox_nano.onnx"
    assert path.read_bytes() == yolox_path.read_bytes()
    assert seen[-1] == (3_678_356, 3_678_356)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yolox_nano.onnx"]


def test_pull_with_bad_checksum_leaves_nothing(serve, tmp_path: Path):
    entry = load_registry().get("yolox-nano")
    url = serve(b"not the model" * 1000)
    with pytest.raises(RegistryError, match="checksum mismatch .* nothing written"):
        pull(entry, tmp_path, url=url)
    assert list(tmp_path.iterdir()) == []


def test_pull_with_dropped_connection_leaves_nothing(serve, yolox_path: Path, tmp_path: Path):
    entry = load_registry().get("yolox-nano")
    url = serve(yolox_path.read_bytes(), drop_after=1_000_000)
    with pytest.raises(RegistryError, match="nothing written"):
        pull(entry, tmp_path, url=url)
    assert list(tmp_path.iterdir()) == []


def test_pull_without_network_is_one_line_and_leaves_nothing(tmp_path: Path):
    r = run_cli("models", "pull", "yolox-nano", "--dest", str(tmp_path), "--url", f"http://127.0.0.1:{free_port()}/x.onnx")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "yolox-nano: download failed" in lines[0] and "Connection refused" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_pull_cli_prints_the_path(serve, yolox_path: Path, tmp_path: Path):
    url = serve(yolox_path.read_bytes())
    r = run_cli("models", "pull", "yolox-nano", "--dest", str(tmp_path), "--url", url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "yolox_nano.onnx")


def test_export_only_models_say_how_to_get_them(tmp_path: Path):
    with pytest.raises(RegistryError, match="no verified download; produce it with `zastava-edge models export yolov8n.pt`"):
        pull(load_registry().get("yolov8n"), tmp_path)


def test_lookup_order_explicit_then_env_then_project(yolox_path: Path, tmp_path: Path, monkeypatch):
    # Explicit path wins.
    assert resolve_model(str(yolox_path)).path == yolox_path
    # Then $ZASTAVA_MODELS.
    monkeypatch.setenv("ZASTAVA_MODELS", str(yolox_path.parent))
    assert resolve_model("yolox-nano").path == yolox_path.parent / "yolox_nano.onnx"
    assert resolve_model("yolox_nano.onnx").entry.name == "yolox-nano"
    # Then the project's models folder.
    monkeypatch.setenv("ZASTAVA_MODELS", str(tmp_path))
    project_copy = MODELS_DIR / "yolox_nano.onnx"
    created = not project_copy.exists()
    if created:
        project_copy.write_bytes(yolox_path.read_bytes())
    try:
        assert resolve_model("yolox-nano").path == project_copy
    finally:
        if created:
            project_copy.unlink()
    # Nowhere: the error names the places and the fix.
    with pytest.raises(ModelError, match=r"not found in .* run `zastava-edge models pull yolox-nano`"):
        resolve_model("yolox-nano")
