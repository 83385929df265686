"""Client-side field encryption: envelopes, keys, the pipeline step and configuration."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging import configure_logging, flush_logging, get_logger
from plexichat.core.logging._core.errors import ConfigError, error_reporter
from plexichat.core.logging._core.manager import get_logging_manager
from plexichat.core.logging.security.encryption import (
    ALGORITHM,
    DecryptionError,
    EncryptionKey,
    KeyFileError,
    KeyRing,
    blind_index,
    decrypt_value,
    encrypt_value,
    generate_key,
    is_encrypted,
    key_from_env,
    load_key_file,
    write_key_file,
)
from plexichat.core.logging.security.encryption_pipeline import WITHHELD
from plexichat.core.logging.security.encryption_records import (
    ENCRYPTION_FAILED,
    FieldEncryptor,
    decrypt_record,
)
from plexichat.core.logging.testing import capture_logs, read_log_records

from .helpers import only_plexi_handler

IP = "203.0.113.77"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A fresh key file (mode 0600)."""
    path = tmp_path / "field.key"
    write_key_file(path)
    return path


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_envelope_shape_is_webcrypto_friendly() -> None:
    """$enc, kid, 12-byte nonce, ciphertext with the 16-byte tag appended, base64url."""
    key = generate_key()
    env = encrypt_value(key, IP, path="context.ip_address")
    assert list(env) == ["$enc", "kid", "nonce", "ct"]
    assert env["$enc"] == ALGORITHM
    assert env["kid"] == key.kid
    assert len(key.kid) == 16
    assert len(_b64url_decode(env["nonce"])) == 12
    assert len(_b64url_decode(env["ct"])) == len(orjson.dumps(IP)) + 16
    assert "=" not in env["ct"] + env["nonce"]


def test_round_trip_of_any_json_value() -> None:
    """Strings, numbers, lists and objects come back as they were."""
    key = generate_key()
    ring = KeyRing([key])
    for value in (IP, 42, 1.5, None, True, ["a", 1], {"n": {"m": [1, 2]}}):
        env = encrypt_value(key, value, path="metadata.v")
        assert decrypt_value(env, ring, path="metadata.v") == value


def test_nonces_are_fresh() -> None:
    """The same value encrypts differently every time (random nonce)."""
    key = generate_key()
    a, b = (encrypt_value(key, IP, path="context.ip") for _ in range(2))
    assert a["nonce"] != b["nonce"]
    assert a["ct"] != b["ct"]


def test_aesgcm_decrypts_with_the_documented_derivation() -> None:
    """An independent implementation of the documented format decrypts the envelope."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = os.urandom(32)
    env = encrypt_value(EncryptionKey(raw), {"a": 1}, path="context.x")
    aes = HKDF(hashes.SHA256(), 32, salt=None, info=b"plexichat-log/v1 aes-256-gcm").derive(raw)
    plain = AESGCM(aes).decrypt(
        _b64url_decode(env["nonce"]), _b64url_decode(env["ct"]), b"context.x"
    )
    assert orjson.loads(plain) == {"a": 1}


def test_moved_envelope_does_not_decrypt() -> None:
    """The field path is associated data: an envelope copied elsewhere fails."""
    key = generate_key()
    env = encrypt_value(key, IP, path="context.ip_address")
    with pytest.raises(DecryptionError, match=r"authentication failed at context\.user"):
        decrypt_value(env, KeyRing([key]), path="context.user")


def test_tampered_ciphertext_is_detected() -> None:
    """One flipped ciphertext bit fails authentication."""
    key = generate_key()
    env = encrypt_value(key, IP, path="context.ip")
    ct = bytearray(_b64url_decode(env["ct"]))
    ct[0] ^= 1
    env["ct"] = base64.urlsafe_b64encode(bytes(ct)).rstrip(b"=").decode()
    with pytest.raises(DecryptionError, match="tampered"):
        decrypt_value(env, KeyRing([key]), path="context.ip")


def test_wrong_key_names_the_missing_key_id() -> None:
    """A key ring without the envelope's key id says which id is missing."""
    env = encrypt_value(generate_key(), IP, path="context.ip")
    with pytest.raises(DecryptionError, match=f"no key with id '{env['kid']}'"):
        decrypt_value(env, KeyRing([generate_key()]), path="context.ip")


@pytest.mark.parametrize(
    "broken",
    [{"nonce": "AAAA"}, {"nonce": 5}, {"ct": "***"}, {"$enc": "rot13"}],
)
def test_malformed_envelopes_raise_decryption_error(broken: dict[str, Any]) -> None:
    """Short nonces, non-text fields, bad base64 or another algorithm: DecryptionError."""
    key = generate_key()
    env: dict[str, Any] = {**encrypt_value(key, IP, path="p"), **broken}
    with pytest.raises(DecryptionError):
        decrypt_value(env, KeyRing([key]), path="p")


def test_decrypt_record_marks_failures_per_field() -> None:
    """One bad field gets a marker; the others decrypt; nothing raises."""
    key, other = generate_key(), generate_key()
    record: dict[str, Any] = {
        "message": "m",
        "context": {
            "ip": encrypt_value(key, IP, path="context.ip"),
            "other": encrypt_value(other, "x", path="context.other"),
            "plain": "p",
        },
        "metadata": encrypt_value(key, {"a": 1}, path="metadata"),
    }
    out = decrypt_record(record, [key])
    assert out["context"]["ip"] == IP
    assert out["context"]["other"] == f"<undecryptable: no key with id '{other.kid}'>"
    assert out["context"]["plain"] == "p"
    assert out["metadata"] == {"a": 1}
    assert is_encrypted(record["context"]["ip"])  # the input is not changed


def test_rotation_decrypts_records_of_several_keys(tmp_path: Path) -> None:
    """A key file with the new key first and the old below decrypts both generations."""
    old, new = write_key_file(tmp_path / "old"), write_key_file(tmp_path / "new")
    path = tmp_path / "keys"
    lines = [(tmp_path / n).read_text().strip() for n in ("new", "old")]
    path.write_text("# rotated 2024\n" + "\n".join(lines) + "\n")
    path.chmod(0o600)
    ring = load_key_file(path)
    assert ring.active is not None
    assert ring.active.kid == new.kid
    assert list(ring) == [new.kid, old.kid]
    assert len(ring) == 2
    record = {
        "context": {
            "a": encrypt_value(old, 1, path="context.a"),
            "b": encrypt_value(new, 2, path="context.b"),
        }
    }
    assert decrypt_record(record, ring)["context"] == {"a": 1, "b": 2}
    assert decrypt_record(record, new)["context"]["b"] == 2


def test_key_repr_hides_the_key() -> None:
    """repr shows the key id only."""
    raw = os.urandom(32)
    key = EncryptionKey(raw)
    assert repr(key) == f"EncryptionKey(kid={key.kid!r})"
    assert base64.b64encode(raw).decode() not in repr(key)


def test_key_file_is_created_private_and_never_overwritten(tmp_path: Path) -> None:
    """write_key_file creates mode 0600 and refuses an existing file."""
    path = tmp_path / "k"
    key = write_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_key_file(path).active is not None
    assert list(load_key_file(path)) == [key.kid]
    with pytest.raises(KeyFileError, match="already exists; it is never overwritten"):
        write_key_file(path)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_group_or_world_readable_key_file_is_refused(key_file: Path, mode: int) -> None:
    """A key file others can read is refused with the chmod fix."""
    key_file.chmod(mode)
    with pytest.raises(KeyFileError, match=f"has mode {mode:o}.*chmod 600"):
        load_key_file(key_file)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "holds no key"),
        (b"# only a comment\n", "holds no key"),
        (b"bm90IGEga2V5\n", "line 1 of .* is not a base64 32-byte key"),
        (b"\xff\xfe\n", "holds no key"),
    ],
)
def test_malformed_key_files_are_refused(tmp_path: Path, content: bytes, match: str) -> None:
    """Empty files, comments only, short keys and binary junk name the problem."""
    path = tmp_path / "k"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=match):
        load_key_file(path)


def test_missing_key_file_names_the_fix(tmp_path: Path) -> None:
    """A missing key file says how to create one."""
    with pytest.raises(KeyFileError, match="encryption-key new FILE"):
        load_key_file(tmp_path / "nope")


def test_key_from_environment() -> None:
    """PLEXICHAT_LOG_ENCRYPTION_KEY holds base64 (standard or URL-safe) of 32 bytes."""
    raw = bytes(range(32))
    std = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    env_std = key_from_env({"PLEXICHAT_LOG_ENCRYPTION_KEY": std})
    env_url = key_from_env({"PLEXICHAT_LOG_ENCRYPTION_KEY": url})
    assert env_std is not None
    assert env_url is not None
    assert env_std.kid == env_url.kid
    assert key_from_env({}) is None
    with pytest.raises(KeyFileError, match="environment variable PLEXICHAT_LOG_ENCRYPTION_KEY"):
        key_from_env({"PLEXICHAT_LOG_ENCRYPTION_KEY": "short"})


def test_raw_key_must_be_32_bytes() -> None:
    """EncryptionKey refuses a key of another length."""
    with pytest.raises(KeyFileError, match="32 bytes, got 16"):
        EncryptionKey(b"x" * 16)


def test_blind_index_is_deterministic_keyed_and_text_based() -> None:
    """Same key and value: same index; another key: another; 123 and "123" agree."""
    key = generate_key()
    assert blind_index(key, IP) == blind_index(key, IP)
    assert len(blind_index(key, IP)) == 32
    assert blind_index(key, IP) != blind_index(generate_key(), IP)
    assert blind_index(key, 123) == blind_index(key, "123")
    assert blind_index(key, {"b": 1, "a": 2}) == blind_index(key, {"a": 2, "b": 1})


def test_field_encryptor_handles_every_path_form() -> None:
    """Leaf, nested leaf, ROOT.* and whole-object paths; missing paths are ignored."""
    key = generate_key()
    step = FieldEncryptor(
        key, ["context.ip", "context.user.email", "metadata.*", "performance_data"]
    )
    user = {"email": "a@b.c", "name": "ann"}
    event: dict[str, Any] = {
        "message": "m",
        "context": {"ip": IP, "user": user, "keep": 1},
        "metadata": {"a": 1, 7: "seven"},
        "performance_data": {"ms": 3},
    }
    out = step(event)
    ctx = out["context"]
    assert is_encrypted(ctx["ip"])
    assert ctx["keep"] == 1
    assert is_encrypted(ctx["user"]["email"])
    assert ctx["user"]["name"] == "ann"
    assert user == {"email": "a@b.c", "name": "ann"}  # copied on write
    assert all(is_encrypted(v) for v in out["metadata"].values())
    assert is_encrypted(out["performance_data"])
    back = decrypt_record(orjson.loads(orjson.dumps(out, option=orjson.OPT_NON_STR_KEYS)), [key])
    assert back["context"] == {"ip": IP, "user": user, "keep": 1}
    assert back["metadata"] == {"a": 1, "7": "seven"}
    assert back["performance_data"] == {"ms": 3}
    assert step({"message": "no fields"}) == {"message": "no fields"}


def test_field_encryptor_adds_blind_index_only_where_asked() -> None:
    """bidx sits beside the ciphertext of the blind-index fields only."""
    key = generate_key()
    out = FieldEncryptor(key, ["context.user"], ["context.ip"])(
        {"context": {"ip": IP, "user": "u"}}
    )
    assert out["context"]["ip"]["bidx"] == blind_index(key, IP)
    assert "bidx" not in out["context"]["user"]


def test_field_encryption_failure_writes_a_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    """An encryption error replaces the field by a marker and reports; never clear text."""
    from plexichat.core.logging.security import encryption_records

    def boom(*_: object, **__: object) -> Any:
        raise RuntimeError("hsm unplugged")

    monkeypatch.setattr(encryption_records, "encrypt_value", boom)
    out = FieldEncryptor(generate_key(), ["context.ip", "metadata"])(
        {"context": {"ip": IP}, "metadata": {"a": IP}}
    )
    assert out["context"] == {"ip": ENCRYPTION_FAILED}
    assert out["metadata"] == ENCRYPTION_FAILED
    assert error_reporter.counts["encrypt"] == 2


def test_hostile_mapping_fails_closed() -> None:
    """A context whose lookups raise becomes the failure marker, not clear text."""

    class Hostile(dict[str, Any]):
        def __contains__(self, key: object) -> bool:
            raise RuntimeError("no")

    out = FieldEncryptor(generate_key(), ["context.ip"])({"context": Hostile(ip=IP)})
    assert out["context"] == ENCRYPTION_FAILED
    assert error_reporter.counts["encrypt"] == 1


@settings(max_examples=60, deadline=None)
@given(
    value=st.recursive(
        st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.binary(max_size=4)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_property_any_value_encrypts_and_never_appears_in_clear(value: Any) -> None:
    """Any value: the envelope's JSON holds no plaintext text of length >= 8."""
    key = generate_key()
    event = FieldEncryptor(key, ["context"])({"context": {"v": value, "marker": "PLAINTEXT-X"}})
    data = orjson.dumps(event)
    assert b"PLAINTEXT-X" not in data
    assert decrypt_record(orjson.loads(data), [key])["context"]["marker"] == "PLAINTEXT-X"


def _configure(log_dir: Path, key_file: Path, **kw: Any) -> None:
    configure_logging(
        directory=log_dir,
        console_enabled=False,
        encryption_key_file=key_file,
        **kw,
    )


@pytest.mark.parametrize("path", ["fast", "stdlib"])
def test_plaintext_never_reaches_the_log_directory(
    log_dir: Path, key_file: Path, path: str
) -> None:
    """End to end: the encrypted field's plaintext is nowhere in the directory's bytes."""
    _configure(log_dir, key_file, encrypt_fields=["context.ip_address", "metadata"])
    logger = get_logger("enc")
    extra = {"context": {"ip_address": IP, "user_id": "u1"}, "metadata": {"ssn": "555-12"}}
    if path == "fast":
        with only_plexi_handler():
            logger.info("login", extra=extra)
    else:
        logger.info("login", extra=extra)
    flush_logging()
    files = [p for p in log_dir.rglob("*") if p.is_file()]
    data = b"".join(p.read_bytes() for p in files)
    assert IP.encode() not in data
    assert b"555-12" not in data
    (record,) = [r for r in read_log_records(log_dir) if r.get("message") == "login"]
    assert record["context"]["user_id"] == "u1"
    back = decrypt_record(record, load_key_file(key_file))
    assert back["context"]["ip_address"] == IP
    assert back["metadata"] == {"ssn": "555-12"}


def test_redaction_runs_before_encryption(key_file: Path) -> None:
    """A secret inside an encrypted object is masked first, then encrypted."""
    configure_logging(
        file_enabled=False, console_enabled=False, encrypt_fields=["context"],
        encryption_key_file=key_file,
    )  # fmt: skip
    with capture_logs() as records:
        get_logger("o").info("m", extra={"context": {"password": "pw", "ip": IP}})
    back = decrypt_record(records[-1], load_key_file(key_file))
    assert back["context"] == {"password": "[REDACTED]", "ip": IP}


def test_console_shows_ciphertext_only(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The console gets the encrypted event: a lock on the terminal, no plaintext."""
    configure_logging(
        file_enabled=False, console_stream="stdout", console_show_context=True,
        encrypt_fields=["context.ip_address"], encryption_key_file=key_file,
    )  # fmt: skip
    with only_plexi_handler():
        get_logger("c").info("hi", extra={"context": {"ip_address": IP}})
    out = capsys.readouterr().out
    assert "hi" in out
    assert "ip_address=🔒" in out  # a lock and the key id, never the value
    assert IP not in out


def test_key_from_environment_variable_is_used(
    monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    """With only PLEXICHAT_LOG_ENCRYPTION_KEY set, fields are encrypted under that key."""
    raw = os.urandom(32)
    monkeypatch.setenv("PLEXICHAT_LOG_ENCRYPTION_KEY", base64.b64encode(raw).decode())
    configure_logging(file_enabled=False, console_enabled=False, encrypt_fields="context.*")
    with capture_logs() as records:
        get_logger("e").info("m", extra={"context": {"ip": IP}})
    envelope = records[-1]["context"]["ip"]
    assert envelope["kid"] == EncryptionKey(raw).kid
    assert error_reporter.counts == {}


def test_missing_key_fails_at_configure_time() -> None:
    """encrypt_fields without a key: ConfigError naming the field and the fix."""
    with pytest.raises(ConfigError, match=r"encrypt_fields=\['context.ip'\] needs a key.*"
                       r"encryption-key new FILE"):  # fmt: skip
        configure_logging(file_enabled=False, encrypt_fields=["context.ip"])
    assert not get_logging_manager().configured


def test_key_file_permissions_fail_at_configure_time(key_file: Path) -> None:
    """A world-readable key file fails configure_logging with the chmod fix."""
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        configure_logging(
            file_enabled=False, encrypt_fields=["context.ip"], encryption_key_file=key_file
        )


def test_implicit_configuration_fails_closed(
    monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    """Encryption asked for in the environment without a key: the automatic
    configuration falls back to the defaults but withholds context and metadata."""
    monkeypatch.setenv("PLEXICHAT_LOG_ENCRYPT_FIELDS", "context.ip_address")
    monkeypatch.setenv("PLEXICHAT_LOG_DIRECTORY", str(log_dir))
    monkeypatch.setenv("PLEXICHAT_LOG_CONSOLE_ENABLED", "false")
    logger = get_logger("implicit")
    assert "config" in error_reporter.counts
    with capture_logs() as records:
        logger.info("m", extra={"context": {"ip_address": IP}})
    assert records[-1]["context"] == WITHHELD


@pytest.mark.parametrize(
    ("settings_", "match"),
    [
        ({"encrypt_fields": ["message"]}, r"invalid field path 'message'"),
        ({"encrypt_fields": ["context..ip"]}, r"an empty name between dots"),
        ({"encrypt_fields": ["context.*.ip"]}, r"'\*' is allowed only as ROOT.\*"),
        ({"encrypt_fields": ["context.a*"]}, r"'\*' is allowed only as ROOT.\*"),
        ({"encrypt_fields": [5]}, r"invalid encrypt_fields entry 5"),
        ({"blind_index_fields": ["context"]}, r"a blind index is kept per value"),
        (
            {"encrypt_fields": ["context"], "blind_index_fields": ["context.ip"]},
            r"encrypts 'context' as one value",
        ),
        (
            {"encrypt_fields": ["context.*"], "blind_index_fields": ["context.a.b"]},
            r"encrypts 'context.a' as one value",
        ),
    ],
)
def test_encryption_settings_are_validated(settings_: dict[str, Any], match: str) -> None:
    """Bad paths fail at configure time with the value and the allowed forms."""
    with pytest.raises(ConfigError, match=match):
        configure_logging(file_enabled=False, **settings_)


def test_list_settings_accept_json_arrays_from_environment(
    monkeypatch: pytest.MonkeyPatch, key_file: Path
) -> None:
    """PLEXICHAT_LOG_ENCRYPT_FIELDS may be a JSON array; blind index fields are encrypted."""
    monkeypatch.setenv("PLEXICHAT_LOG_ENCRYPT_FIELDS", '["metadata.card"]')
    monkeypatch.setenv("PLEXICHAT_LOG_BLIND_INDEX_FIELDS", "context.ip")
    monkeypatch.setenv("PLEXICHAT_LOG_ENCRYPTION_KEY_FILE", str(key_file))
    configure_logging(file_enabled=False, console_enabled=False)
    with capture_logs() as records:
        get_logger("j").info("m", extra={"context": {"ip": IP}, "metadata": {"card": "x"}})
    assert "bidx" in records[-1]["context"]["ip"]
    assert is_encrypted(records[-1]["metadata"]["card"])
