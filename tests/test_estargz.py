"""eStargz layers: built by the sandbox, read by TOC and chunk with HTTP Range from the real
registry, every piece verified; tampering is an ERROR."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib

import pytest

from deploycheck.blobcache import BlobCache
from deploycheck.errors import ObservationError
from deploycheck.estargz import (
    TOC_DIGEST_ANNOTATION,
    Chunk,
    EStargzError,
    decode_chunk,
    parse_footer,
    parse_toc,
    toc_json,
)
from deploycheck.imageref import ImageRef
from deploycheck.images import ImageLimits, RegistryImageReader
from deploycheck.registry import sha256_digest
from deploycheck.sandbox.estargz_layer import estargz_layer_from_files
from deploycheck.sandbox.oci_builder import Blob, FileEntry, build_image, random_layer

from imagetools import MIB, StubRegistry, mirror_client, publish, publish_layers, relabel_layers

HEARTBEAT = "/app/shared/monitoring/processor_heartbeat.py"
FIXED_CODE = b"    def processor_name(self):\n        return self.processor_name\n"


@pytest.fixture
def client(registry):
    with mirror_client(registry.url, timeout=5) as registry_client:
        yield registry_client


def read(client, ref, paths, *, cache=None, **limits):
    return RegistryImageReader(client, cache=cache, limits=ImageLimits(**limits)).read_files(ref, paths)


def app_files(count: int = 20, size: int = 100_000) -> dict:
    files = {f"/app/assets/a{index:03d}.bin": os.urandom(size) for index in range(count)}
    files[HEARTBEAT] = FIXED_CODE
    files.update({f"/app/static/z{index:03d}.bin": os.urandom(size) for index in range(count)})
    return files


def toc_of(layer: Blob):
    offset = parse_footer(layer.data[-51:], layer.size)
    return parse_toc(
        toc_json(layer.data[offset:-51], 1 << 24), layer.annotations[TOC_DIGEST_ANNOTATION], toc_offset=offset
    )


# --- the builder ------------------------------------------------------------------------------------


def test_built_layer_is_an_ordinary_gzip_tar_with_toc_landmark_and_footer():
    files = {
        "/app/a.py": b"print('a')\n",
        "/app/big.bin": os.urandom(10_000),
        "/app/empty": b"",
        "/app/link": FileEntry.symlink("a.py"),
    }
    layer = estargz_layer_from_files(files, chunk_size=4096)

    tar_bytes = gzip.decompress(layer.data)  # any gzip reader sees one stream
    assert layer.diff_id == sha256_digest(tar_bytes)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert tar.getnames() == [
            ".no.prefetch.landmark",
            "app",
            "app/a.py",
            "app/big.bin",
            "app/empty",
            "app/link",
            "stargz.index.json",
        ]
        assert tar.extractfile("app/big.bin").read() == files["/app/big.bin"]
    toc = toc_of(layer)
    assert [(c.file_offset, c.length) for c in toc.chunks["/app/big.bin"]] == [(0, 4096), (4096, 4096), (8192, 1808)]
    assert layer.annotations[TOC_DIGEST_ANNOTATION] == toc.digest
    assert estargz_layer_from_files(files, chunk_size=4096) == layer  # deterministic


def test_chunks_sharing_one_gzip_member_are_cut_at_their_inner_offset():
    member = gzip.compress(b"first-file" + b"second-file", mtime=0)
    second = Chunk(
        offset=0, end=len(member), inner_offset=10, file_offset=0, length=11, digest=sha256_digest(b"second-file")
    )
    assert decode_chunk(member, second, "/b") == b"second-file"
    with pytest.raises(EStargzError, match=r"hashes to .* not its TOC chunkDigest"):
        decode_chunk(member, Chunk(0, len(member), 0, 0, 11, second.digest), "/b")


@pytest.mark.parametrize(
    "footer, message",
    [
        (b"\x1f\x8b\x08\x00" + bytes(47), "does not end with an eStargz footer"),
        (bytes(51), "does not end with an eStargz footer"),
    ],
)
def test_a_blob_without_a_footer_is_refused(footer, message):
    with pytest.raises(EStargzError, match=message):
        parse_footer(footer, 1000)


def test_toc_with_chunks_that_do_not_cover_the_file_is_refused():
    raw = (
        b'{"version":1,"entries":[{"name":"a","type":"reg","size":10,"offset":0,"chunkSize":4,'
        b'"chunkDigest":"sha256:' + b"0" * 64 + b'"}]}'
    )
    with pytest.raises(EStargzError, match="do not cover its 10 bytes"):
        parse_toc(raw + b"", sha256_digest(raw), toc_offset=100)


# --- reading from the real registry -----------------------------------------------------------------


def test_file_of_an_estargz_layer_costs_the_footer_toc_and_its_chunk(registry, client):
    base, layer = random_layer(2 * MIB, seed=21), estargz_layer_from_files(app_files())
    ref = publish_layers(registry, "estargz", [base, layer])

    result = read(client, ref, [HEARTBEAT, "/app/nope.py"])

    heartbeat = result[HEARTBEAT]
    assert heartbeat.data == FIXED_CODE and heartbeat.integrity == "estargz" and heartbeat.layer_index == 1
    assert "layer 1 is eStargz: read its TOC and the file's chunks (" in heartbeat.note
    assert "verified against the manifest's TOC digest" in heartbeat.note
    # Absence needs every layer: the TOC lists layer 1 whole, the plain base layer is read whole.
    assert not result["/app/nope.py"].found and result["/app/nope.py"].note.startswith(
        "not in any of the 2 layers; layer 1 is eStargz: read its TOC ("
    )
    estargz_bytes = result.bytes_read - base.size - 4096  # less manifest and config (a few hundred bytes)
    assert 0 < estargz_bytes < 32 * 1024 < layer.size / 100
    assert client.stats.requests == 5  # manifest, config, the layer's tail (footer + TOC), the chunk, the base layer


def test_a_big_toc_takes_a_second_range_and_a_chunked_file_one_range(registry, client):
    files = {f"/app/pkg/mod{index:04d}.py": f"# module {index}\n".encode() for index in range(2000)}
    files["/app/data/big.bin"] = big = os.urandom(300_000)
    layer = estargz_layer_from_files(files, chunk_size=64 * 1024)
    ref = publish_layers(registry, "estargz-big-toc", [layer])

    result = read(client, ref, ["/app/data/big.bin"])

    assert result["/app/data/big.bin"].data == big and result["/app/data/big.bin"].integrity == "estargz"
    assert client.stats.requests == 2 + 3  # manifest, config; tail, the rest of the TOC, the file's 5 chunks at once


def test_only_the_chunks_within_max_file_bytes_are_read(registry, client):
    big = os.urandom(400_000)
    layer = estargz_layer_from_files({"/app/big.bin": big}, chunk_size=50_000)
    ref = publish_layers(registry, "estargz-truncated", [layer])
    result = read(client, ref, ["/app/big.bin"], max_file_bytes=120_000)
    assert result["/app/big.bin"].data == big[:120_000] and result["/app/big.bin"].truncated
    assert result.bytes_read < 3 * 50_000 + 20_000 + 4096  # 3 of 8 chunks, the tail, manifest and config


def test_estargz_pieces_are_cached_by_their_digests_and_a_warm_read_costs_nothing(registry, client, tmp_path):
    layer = estargz_layer_from_files(app_files())
    image = build_image([layer])
    ref = publish(registry.url, "estargz-warm", image)
    read(client, ref, [HEARTBEAT], cache=BlobCache(tmp_path / "cache"))

    stored = {"sha256:" + path.name for path in (tmp_path / "cache" / "sha256").iterdir()}
    toc = toc_of(layer)
    assert stored == {image.digest, image.config.digest, toc.digest, toc.chunks[HEARTBEAT][0].digest}

    with mirror_client(registry.url) as warm_client:
        warm = read(warm_client, ref, [HEARTBEAT], cache=BlobCache(tmp_path / "cache"))
        assert (warm_client.stats.requests, warm.bytes_read) == (0, 0)
    assert warm[HEARTBEAT].data == FIXED_CODE
    assert "its TOC and the file's chunks came from the blob cache" in warm[HEARTBEAT].note


def test_verify_layers_reads_an_estargz_layer_whole(registry, client):
    layer = estargz_layer_from_files(app_files())
    ref = publish_layers(registry, "estargz-verify", [layer])
    result = read(client, ref, [HEARTBEAT], verify_layers=True)
    assert result[HEARTBEAT].data == FIXED_CODE and result[HEARTBEAT].integrity == "sha256"
    assert result.bytes_read >= layer.size


def test_a_tampered_chunk_is_an_error(registry, client):
    layer = estargz_layer_from_files(app_files(count=2), compresslevel=0)  # stored: a flipped byte stays a byte
    chunk = toc_of(layer).chunks[HEARTBEAT][0]
    tampered = bytearray(layer.data)
    tampered[chunk.offset + 10 + 5 + 20] ^= 0x01  # gzip header, stored-block header, then the file's bytes
    forged = Blob.of(bytes(tampered), layer.media_type, diff_id=layer.diff_id, annotations=layer.annotations)
    ref = publish_layers(registry, "estargz-tampered", [forged])

    with pytest.raises(ObservationError) as raised:
        read(client, ref, [HEARTBEAT])

    message = str(raised.value)
    assert f"layer 0 ({forged.digest}) is announced as eStargz, but the chunk of {HEARTBEAT}" in message
    assert f"not its TOC chunkDigest {chunk.digest} (corrupt or hostile registry)" in message
    assert "--verify-layers" in message


def test_a_toc_that_does_not_match_the_annotation_is_an_error(registry, client):
    layer = estargz_layer_from_files(app_files(count=2))
    wrong = Blob.of(
        layer.data,
        layer.media_type,
        diff_id=layer.diff_id,
        annotations={TOC_DIGEST_ANNOTATION: sha256_digest(b"another TOC")},
    )
    ref = publish_layers(registry, "estargz-wrong-toc", [wrong])
    with pytest.raises(ObservationError, match=r"the TOC hashes to sha256:\w+, not the sha256:\w+ the manifest's"):
        read(client, ref, [HEARTBEAT])


def test_an_annotated_layer_without_a_footer_is_an_error(registry, client):
    plain = estargz_layer_from_files(app_files(count=1))
    cut = Blob.of(plain.data[:-51], plain.media_type, diff_id=plain.diff_id, annotations=plain.annotations)
    ref = publish_layers(registry, "estargz-no-footer", [cut])
    with pytest.raises(ObservationError, match="does not end with an eStargz footer"):
        read(client, ref, [HEARTBEAT])


def test_a_registry_that_ignores_range_still_gives_the_right_bytes():
    layer = estargz_layer_from_files({HEARTBEAT: FIXED_CODE, "/app/z.bin": os.urandom(50_000)})
    image = build_image([layer])
    ref = ImageRef.parse("gcr.io/proj/app").with_digest(image.digest)
    stub = StubRegistry()  # answers 200 with the whole blob, whatever the Range
    try:
        stub.serve_image(ref, image)
        with mirror_client(stub.url) as stub_client:
            result = read(stub_client, ref, [HEARTBEAT])
    finally:
        stub.close()
    assert result[HEARTBEAT].data == FIXED_CODE and result[HEARTBEAT].integrity == "estargz"


def test_decode_checks_the_member_holds_enough():
    member = gzip.compress(b"short", mtime=0)
    with pytest.raises(EStargzError, match="too few for the chunk"):
        decode_chunk(member, Chunk(0, len(member), 0, 0, 10, "sha256:" + hashlib.sha256(b"x").hexdigest()), "/a")
    with pytest.raises(EStargzError, match="is not gzip"):
        decode_chunk(zlib.compress(b"not gzip framing"), Chunk(0, 10, 0, 0, 5, "sha256:" + "0" * 64), "/a")


def test_the_annotation_on_a_layer_that_is_not_gzip_does_not_make_it_estargz(registry, client):
    layer = estargz_layer_from_files({HEARTBEAT: FIXED_CODE})
    plain_tar = "application/vnd.oci.image.layer.v1.tar"
    plain = Blob.of(gzip.decompress(layer.data), plain_tar, diff_id=layer.diff_id, annotations=layer.annotations)
    ref = publish(registry.url, "estargz-plain-tar", relabel_layers(build_image([plain]), {0: plain_tar}))
    heartbeat = read(client, ref, [HEARTBEAT])[HEARTBEAT]
    assert heartbeat.data == FIXED_CODE and heartbeat.integrity == "sha256"
