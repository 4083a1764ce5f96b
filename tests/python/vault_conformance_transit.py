"""Transit checks of the Vault emulator conformance suite, driven through hvac's transit methods.

Expected behaviour is Vault's: builtin/logical/transit (path_keys.go, path_config.go, path_encrypt.go, path_decrypt.go,
path_datakey.go, path_rewrap.go) and sdk/helper/keysutil/policy.go (ciphertext "vault:v<N>:" + base64(nonce | sealed),
the user errors quoted below).
"""
import base64

import hvac.exceptions as hx

TRANSIT_TOKEN = "transit-update-token"


def seed_transit(seed):
    """The transit engine at "transit" and a token that may update (not create) on transit/encrypt/*."""
    seed.setdefault("secrets", {})["transit"] = {"type": "transit"}
    seed["policies"]["transit-update"] = [
        {"path": "transit/encrypt/*", "capabilities": ["update"]},
        {"path": "transit/decrypt/*", "capabilities": ["update"]},
    ]
    seed["tokens"].append({"id": TRANSIT_TOKEN, "policies": ["transit-update"], "ttl": "768h"})
    return seed


def b64(data):
    return base64.b64encode(data).decode()


class TransitChecks:
    TRANSIT_CHECKS = [
        "transit_create_and_read_key", "transit_encrypt_decrypt", "transit_derived_key_needs_context",
        "transit_rotate_rewrap_min_decryption_version", "transit_data_keys", "transit_encrypt_upsert_needs_create",
    ]

    def transit(self, token=None):
        return (self.client(token) if token else self.client()).secrets.transit

    def transit_error(self, fn, *args, **kwargs):
        ex = self.raises(hx.InvalidRequest, fn, *args, **kwargs)
        return ex.errors

    def transit_create_and_read_key(self):
        transit = self.transit()
        transit.create_key(name="conf-read")
        data = transit.read_key(name="conf-read")["data"]
        assert data["type"] == "aes256-gcm96" and data["derived"] is False, data
        assert data["latest_version"] == 1 and data["min_decryption_version"] == 1 and list(data["keys"]) == ["1"], data
        assert data["supports_encryption"] is True and data["exportable"] is False, data
        missing = self.raises(hx.InvalidPath, transit.read_key, name="conf-missing")
        assert missing.errors == [], missing.errors

    def transit_encrypt_decrypt(self):
        transit = self.transit()
        transit.create_key(name="conf-plain")
        plaintext = b"FAKE-transit-plaintext"
        encrypted = transit.encrypt_data(name="conf-plain", plaintext=b64(plaintext))["data"]
        assert encrypted["key_version"] == 1 and encrypted["ciphertext"].startswith("vault:v1:"), encrypted
        sealed = base64.b64decode(encrypted["ciphertext"][len("vault:v1:"):])
        assert len(sealed) == 12 + len(plaintext) + 16, len(sealed)  # nonce | ciphertext | GCM tag
        decrypted = transit.decrypt_data(name="conf-plain", ciphertext=encrypted["ciphertext"])["data"]
        assert base64.b64decode(decrypted["plaintext"]) == plaintext, decrypted
        tampered = bytearray(sealed)
        tampered[-1] ^= 1
        assert self.transit_error(transit.decrypt_data, name="conf-plain",
                                  ciphertext="vault:v1:" + b64(bytes(tampered))) == ["invalid ciphertext: unable to decrypt"]
        assert self.transit_error(transit.decrypt_data, name="conf-plain", ciphertext=b64(sealed)) == ["invalid ciphertext: no prefix"]
        assert self.transit_error(transit.decrypt_data, name="conf-plain", ciphertext="vault:v9:" + b64(sealed)) == \
            ["invalid ciphertext: version is too new"]
        assert self.transit_error(transit.decrypt_data, name="conf-nope", ciphertext=encrypted["ciphertext"]) == ["encryption key not found"]
        assert self.transit_error(transit.encrypt_data, name="conf-plain", plaintext=b64(b"x"), key_version=2) == \
            ["requested version for encryption is higher than the latest key version"]

    def transit_derived_key_needs_context(self):
        transit = self.transit()
        transit.create_key(name="conf-derived", derived=True)
        data = transit.read_key(name="conf-derived")["data"]
        assert data["derived"] is True and data["kdf"] == "hkdf_sha256", data
        errors = self.transit_error(transit.encrypt_data, name="conf-derived", plaintext=b64(b"FAKE"))
        assert errors[0].startswith("missing 'context' for key derivation"), errors
        context = b64(b"FAKE-tenant-a")
        encrypted = transit.encrypt_data(name="conf-derived", plaintext=b64(b"FAKE-derived"), context=context)["data"]
        decrypted = transit.decrypt_data(name="conf-derived", ciphertext=encrypted["ciphertext"], context=context)["data"]
        assert base64.b64decode(decrypted["plaintext"]) == b"FAKE-derived"
        assert self.transit_error(transit.decrypt_data, name="conf-derived", ciphertext=encrypted["ciphertext"],
                                  context=b64(b"FAKE-tenant-b")) == ["invalid ciphertext: unable to decrypt"]

    def transit_rotate_rewrap_min_decryption_version(self):
        transit = self.transit()
        transit.create_key(name="conf-rotate")
        old = transit.encrypt_data(name="conf-rotate", plaintext=b64(b"FAKE-old"))["data"]["ciphertext"]
        rotated = transit.rotate_key(name="conf-rotate")
        assert rotated["data"]["latest_version"] == 2 and sorted(rotated["data"]["keys"]) == ["1", "2"], rotated
        assert base64.b64decode(transit.decrypt_data(name="conf-rotate", ciphertext=old)["data"]["plaintext"]) == b"FAKE-old"
        rewrapped = transit.rewrap_data(name="conf-rotate", ciphertext=old)["data"]
        assert rewrapped["ciphertext"].startswith("vault:v2:") and rewrapped["key_version"] == 2, rewrapped
        transit.update_key_configuration(name="conf-rotate", min_decryption_version=2)
        assert transit.read_key(name="conf-rotate")["data"]["min_decryption_version"] == 2
        assert self.transit_error(transit.decrypt_data, name="conf-rotate", ciphertext=old) == \
            ["ciphertext or signature version is disallowed by policy (too old)"]
        assert base64.b64decode(transit.decrypt_data(name="conf-rotate", ciphertext=rewrapped["ciphertext"])["data"]["plaintext"]) == b"FAKE-old"
        assert self.transit_error(transit.update_key_configuration, name="conf-rotate", min_decryption_version=5) == \
            ["cannot set min decryption version of 5, latest key version is 2"]
        assert self.transit_error(transit.update_key_configuration, name="conf-none", min_decryption_version=1) == \
            ["no existing key named conf-none could be found"]

    def transit_data_keys(self):
        transit = self.transit()
        transit.create_key(name="conf-datakey")
        generated = transit.generate_data_key(name="conf-datakey", key_type="plaintext")["data"]
        key = base64.b64decode(generated["plaintext"])
        assert len(key) == 32 and generated["ciphertext"].startswith("vault:v1:") and generated["key_version"] == 1, generated
        unwrapped = transit.decrypt_data(name="conf-datakey", ciphertext=generated["ciphertext"])["data"]
        assert base64.b64decode(unwrapped["plaintext"]) == key
        wrapped = transit.generate_data_key(name="conf-datakey", key_type="wrapped", bits=512)["data"]
        assert "plaintext" not in wrapped and wrapped["ciphertext"].startswith("vault:v1:"), wrapped
        assert len(base64.b64decode(transit.decrypt_data(name="conf-datakey", ciphertext=wrapped["ciphertext"])["data"]["plaintext"])) == 64
        assert self.transit_error(transit.generate_data_key, name="conf-nokey", key_type="plaintext") == ["encryption key not found"]
        # hvac checks bits itself; sent raw, Vault answers with its own error.
        raw = self.raises(hx.InvalidRequest, self.client().adapter.post, "/v1/transit/datakey/plaintext/conf-datakey", json={"bits": 100})
        assert raw.errors == ["invalid bit length"], raw.errors

    def transit_encrypt_upsert_needs_create(self):
        # path_encrypt.go: encrypting under a missing key creates it (derived when a context is given), which the ACL
        # checks as "create"; a token with "update" alone may encrypt under existing keys only.
        self.transit().encrypt_data(name="conf-upsert", plaintext=b64(b"FAKE"), context=b64(b"ctx"))
        assert self.transit().read_key(name="conf-upsert")["data"]["derived"] is True
        limited = self.transit(TRANSIT_TOKEN)
        denied = self.raises(hx.Forbidden, limited.encrypt_data, name="conf-upsert-2", plaintext=b64(b"FAKE"))
        assert "permission denied" in denied.errors[0] and "invalid token" not in denied.errors[0], denied.errors
        encrypted = limited.encrypt_data(name="conf-upsert", plaintext=b64(b"FAKE"), context=b64(b"ctx"))["data"]
        assert encrypted["ciphertext"].startswith("vault:v1:")
