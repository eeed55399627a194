#!/usr/bin/env python3
"""Interoperability test: Charter's OAuth 2.0 token service driven by independent clients.

- authlib (OAuth2Session, requests integration) obtains tokens with the client_credentials
  grant using client_secret_basic, client_secret_post and private_key_jwt (RFC 7523),
  and revokes them (RFC 7009);
- PyJWT verifies every access token against Charter's JWKS (RFC 9068 profile);
- plain requests calls introspection (RFC 7662) as a gateway principal.

Every endpoint is taken from RFC 8414 discovery. openid_client.mjs drives the same server
with openid-client (Node) as a second, independent client. The server must already be running:
tests/interop/run.sh starts it. Usage:

    test_oauth.py --base http://127.0.0.1:PORT --admin-token TOKEN

Prints one line per check and closes with "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import base64
import datetime as dt
import json
import sys
import time
import traceback
import warnings

import jwt  # PyJWT
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, OKPKey

AUDIENCE = "https://api.example.com/orders"
GRANT_SCOPES = ["orders:read", "orders:list"]
HTTP_TIMEOUT = 10


# --------------------------------------------------------------------------------------
# tiny check runner
# --------------------------------------------------------------------------------------

class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.notes = []

    def check(self, name, fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - report every kind of failure the same way
            self.failed.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            tb = traceback.format_exc().rstrip().splitlines()
            for line in tb[-8:]:
                print(f"     {line}", flush=True)
            return False
        self.passed += 1
        print(f"ok   {name}", flush=True)
        return True

    def note(self, text):
        self.notes.append(text)
        print(f"NOTE {text}", flush=True)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --------------------------------------------------------------------------------------
# seeding over the admin API
# --------------------------------------------------------------------------------------

class Admin:
    def __init__(self, base, admin_token):
        self.base = base
        self.admin = admin_token
        self.http = requests.Session()

    def call(self, method, path, token, body=None, expect=(200, 201)):
        r = self.http.request(
            method,
            self.base + path,
            headers={"Authorization": f"Bearer {token}"},
            json=body,
            timeout=HTTP_TIMEOUT,
        )
        if r.status_code not in expect:
            raise AssertionError(f"{method} {path} -> {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def principal(self, name, roles):
        v = self.call("POST", "/v1/principals", self.admin, {"name": name, "roles": roles}, (201,))
        return v["id"], v["token"]


class World:
    """One API, one direct partner, one active grant and its credentials."""

    def __init__(self, base, admin_token):
        a = Admin(base, admin_token)
        self.admin = a
        self.owner = a.principal("interop-orders-team", ["api_owner"])
        self.steward = a.principal("interop-partner-office", ["steward"])
        self.approver = a.principal("interop-alice", ["approver"])
        self.gateway = a.principal("interop-gateway", ["gateway"])
        api = a.call("POST", "/v1/apis", self.owner[1], {
            "name": "orders",
            "audience": AUDIENCE,
            "upstream": "http://127.0.0.1:9/",
            "owner": self.owner[0],
            "operations": [
                {"scope": "orders:read", "method": "GET", "path": "/orders/{id}",
                 "data_class": "confidential", "region": "eu"},
                {"scope": "orders:list", "method": "GET", "path": "/orders",
                 "data_class": "internal", "region": "eu"},
            ],
        }, (201,))
        self.api = api["id"]
        partner = a.call("POST", "/v1/partners", self.steward[1], {
            "name": "Acme Interop", "kind": "direct", "regions": ["eu"],
            "owners": [self.approver[0]],
        }, (201,))
        self.partner = partner["id"]
        self.use_case = "Delivery status sync (interop)"
        expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).replace(microsecond=0)
        grant = a.call("POST", "/v1/grants", self.steward[1], {
            "partner": self.partner,
            "api": self.api,
            "use_case": self.use_case,
            "scopes": GRANT_SCOPES,
            "data_class_ceiling": "confidential",
            "regions": ["eu"],
            "expires_at": expires.isoformat().replace("+00:00", "Z"),
        }, (201,))
        self.grant = grant["id"]
        expect_equal(grant["status"], "pending", "new grant status")
        g = a.call("POST", f"/v1/grants/{self.grant}/approvals", self.approver[1], {
            "decision": "approve", "justification": "interop test", "ticket": "CHG-INTEROP",
        }, (200, 201))
        expect_equal(g["status"], "active", "approved grant status")

    def credential(self, body):
        return self.admin.call("POST", f"/v1/grants/{self.grant}/credentials", self.steward[1],
                               body, (201,))

    def client_secret(self):
        c = self.credential({"kind": "client_secret"})
        return c["client_id"], c["client_secret"]

    def ed25519_client(self):
        priv = ed25519.Ed25519PrivateKey.generate()
        raw = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        c = self.credential({"kind": "private_key_jwt",
                             "public_jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}})
        pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        return c["client_id"], OKPKey.import_key(pem)

    def p256_credential(self):
        """A private_key_jwt credential for a new P-256 key: (client_id, cryptography key)."""
        priv = ec.generate_private_key(ec.SECP256R1())
        nums = priv.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256",
               "x": b64url(nums.x.to_bytes(32, "big")), "y": b64url(nums.y.to_bytes(32, "big"))}
        c = self.credential({"kind": "private_key_jwt", "public_jwk": jwk})
        return c["client_id"], priv

    def p256_client(self):
        cid, priv = self.p256_credential()
        pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        return cid, ECKey.import_key(pem)


# --------------------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------------------

class RecordingPrivateKeyJWT(PrivateKeyJWT):
    """authlib's stock PrivateKeyJWT, unchanged (its fixed 3600 s assertion lifetime, the alg
    it is given); it only keeps the last assertion it signed so checks can report on it."""

    last = None

    def sign(self, auth, token_endpoint):
        self.last = super().sign(auth, token_endpoint)
        return self.last

    def last_header_and_claims(self):
        assert self.last, "no assertion was signed"
        text = self.last.decode() if isinstance(self.last, bytes) else self.last
        return jwt.get_unverified_header(text), jwt.decode(text, options={"verify_signature": False})


class Interop:
    def __init__(self, base, admin_token, runner):
        self.base = base
        self.r = runner
        self.meta = None
        self.world = None
        self.tokens = []  # (label, client_id, token response dict)

    # 1. discovery -----------------------------------------------------------------
    def discovery(self):
        r = requests.get(self.base + "/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 200, "metadata status")
        m = r.json()
        expect_equal(m.get("issuer"), self.base, "issuer")
        for k in ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"):
            v = m.get(k)
            assert isinstance(v, str) and v.startswith(self.base + "/"), f"{k} = {v!r} not under issuer"
        methods = m.get("token_endpoint_auth_methods_supported", [])
        for meth in ("client_secret_basic", "client_secret_post", "private_key_jwt"):
            assert meth in methods, f"{meth} missing from token_endpoint_auth_methods_supported"
        assert "client_credentials" in m.get("grant_types_supported", []), "client_credentials grant"
        self.meta = m
        jwks = requests.get(m["jwks_uri"], timeout=HTTP_TIMEOUT).json()
        assert jwks.get("keys"), "JWKS has keys"
        for k in jwks["keys"]:
            assert "d" not in k, "JWKS leaks private material"
            assert k.get("kid"), "every JWKS key has a kid"

    @property
    def issuer(self):
        return self.meta["issuer"]

    def session(self, client_id, secret_or_key, method, **kw):
        """An authlib session; `method` is a method name or an authlib auth object
        (PrivateKeyJWT), registered the documented way."""
        name = method if isinstance(method, str) else method.name
        sess = OAuth2Session(client_id, secret_or_key, token_endpoint_auth_method=name,
                             revocation_endpoint_auth_method=name, **kw)
        if not isinstance(method, str):
            sess.register_client_auth_method(method)
        return sess

    def fetch(self, sess, **params):
        return sess.fetch_token(self.meta["token_endpoint"], grant_type="client_credentials",
                                timeout=HTTP_TIMEOUT, **params)

    def expect_token(self, tok, scope):
        expect_equal(tok.get("token_type"), "Bearer", "token_type")
        assert isinstance(tok.get("access_token"), str) and tok["access_token"].count(".") == 2, \
            "access_token is a compact JWS"
        assert isinstance(tok.get("expires_in"), int) and 0 < tok["expires_in"] <= 3600, \
            f"expires_in {tok.get('expires_in')!r}"
        expect_equal(tok.get("scope"), scope, "scope in the token response")

    # 2. authlib client_credentials ----------------------------------------------------
    def client_secret_basic(self):
        cid, secret = self.world.client_secret()
        self.basic_client = (cid, secret)
        sess = self.session(cid, secret, "client_secret_basic")
        tok = self.fetch(sess)
        self.expect_token(tok, " ".join(GRANT_SCOPES))
        self.tokens.append(("client_secret_basic", cid, tok))
        # the response must not be cached (RFC 6749 §5.1)
        r = requests.post(self.meta["token_endpoint"], auth=(cid, secret),
                          data={"grant_type": "client_credentials"}, timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 200, "plain requests Basic token status")
        expect_equal(r.headers.get("Cache-Control"), "no-store", "Cache-Control")

    def client_secret_post(self):
        cid, secret = self.world.client_secret()
        sess = self.session(cid, secret, "client_secret_post")
        tok = self.fetch(sess)
        self.expect_token(tok, " ".join(GRANT_SCOPES))
        self.tokens.append(("client_secret_post", cid, tok))

    def scope_narrowing(self):
        cid, secret = self.basic_client
        sess = self.session(cid, secret, "client_secret_basic", scope="orders:read")
        tok = self.fetch(sess)
        self.expect_token(tok, "orders:read")
        self.tokens.append(("scope=orders:read", cid, tok))
        # scope as a fetch_token parameter, plus RFC 8707 resource naming the API
        sess = self.session(cid, secret, "client_secret_post")
        tok = self.fetch(sess, scope="orders:list", resource=AUDIENCE)
        self.expect_token(tok, "orders:list")
        self.tokens.append(("scope=orders:list resource=aud", cid, tok))

    def scope_outside_grant(self):
        cid, secret = self.basic_client
        sess = self.session(cid, secret, "client_secret_basic", scope="orders:write")
        try:
            self.fetch(sess)
        except OAuthError as e:
            expect_equal(e.error, "invalid_scope", "error for a scope outside the grant")
        else:
            raise AssertionError("a scope outside the grant was granted")

    def wrong_audience(self):
        cid, secret = self.basic_client
        sess = self.session(cid, secret, "client_secret_basic")
        try:
            self.fetch(sess, audience="https://api.example.com/other")
        except OAuthError as e:
            expect_equal(e.error, "invalid_target", "error for a foreign audience")
        else:
            raise AssertionError("a token was issued for another API's audience")

    def wrong_secret(self):
        cid, _ = self.basic_client
        for method in ("client_secret_basic", "client_secret_post"):
            sess = self.session(cid, "not-the-secret-" + "x" * 30, method)
            try:
                self.fetch(sess)
            except OAuthError as e:
                expect_equal(e.error, "invalid_client", f"error for a wrong secret ({method})")
            else:
                raise AssertionError(f"a wrong secret was accepted ({method})")

    def private_key_jwt_ed25519(self):
        cid, key = self.world.ed25519_client()
        auth = RecordingPrivateKeyJWT(self.meta["token_endpoint"], alg="EdDSA")
        sess = self.session(cid, key, auth)
        tok = self.fetch(sess)
        self.expect_token(tok, " ".join(GRANT_SCOPES))
        self.tokens.append(("private_key_jwt EdDSA", cid, tok))
        self.ed_session = sess
        # A second request signs a fresh assertion (new jti): no replay refusal.
        tok2 = self.fetch(sess, scope="orders:read")
        self.expect_token(tok2, "orders:read")
        self.ed_token = tok2

    def private_key_jwt_es256(self):
        cid, key = self.world.p256_client()
        auth = RecordingPrivateKeyJWT(self.meta["token_endpoint"], alg="ES256")
        sess = self.session(cid, key, auth)
        tok = self.fetch(sess)
        self.expect_token(tok, " ".join(GRANT_SCOPES))
        self.tokens.append(("private_key_jwt ES256", cid, tok))

    def private_key_jwt_authlib_default_lifetime(self):
        """authlib's stock PrivateKeyJWT signs assertions with exp = iat + 3600 s; Charter
        accepts assertions up to one hour ahead."""
        cid, key = self.world.ed25519_client()
        auth = RecordingPrivateKeyJWT(self.meta["token_endpoint"], alg="EdDSA")
        sess = self.session(cid, key, auth)
        tok = self.fetch(sess)
        self.expect_token(tok, " ".join(GRANT_SCOPES))
        _, claims = auth.last_header_and_claims()
        expect_equal(claims["exp"] - claims["iat"], 3600, "authlib's assertion lifetime")
        self.tokens.append(("private_key_jwt EdDSA, 1 h assertion", cid, tok))

    def private_key_jwt_rfc9864_ed25519_alg(self):
        """RFC 9864's fully-specified name "Ed25519" (joserfc's preferred name) is accepted for
        an Ed25519 key, as is the older "EdDSA"; the metadata lists both."""
        for k in ("token_endpoint_auth_signing_alg_values_supported",
                  "revocation_endpoint_auth_signing_alg_values_supported"):
            expect_equal(self.meta.get(k), ["EdDSA", "Ed25519", "ES256"], k)
        cid, key = self.world.ed25519_client()
        auth = RecordingPrivateKeyJWT(self.meta["token_endpoint"], alg="Ed25519")
        sess = self.session(cid, key, auth)
        tok = self.fetch(sess)
        self.expect_token(tok, " ".join(GRANT_SCOPES))
        header, _ = auth.last_header_and_claims()
        expect_equal(header.get("alg"), "Ed25519", "assertion alg")
        self.tokens.append(("private_key_jwt Ed25519", cid, tok))
        # Revocation authenticates the same way.
        r = sess.revoke_token(self.meta["revocation_endpoint"], tok["access_token"],
                              timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 200, f"revocation status ({r.text[:200]})")
        self.tokens.pop()
        expect_equal(self.introspect(tok["access_token"]), {"active": False},
                     "introspection after revocation")

    def private_key_jwt_ed25519_name_with_p256_key(self):
        """The Ed25519 name is pinned to Ed25519 keys: a P-256 client's assertion (a valid
        ES256 signature) whose header says alg "Ed25519" is refused; under "ES256" it works."""
        cid, priv = self.world.p256_credential()

        def assertion(alg, jti):
            now = int(time.time())
            claims = {"iss": cid, "sub": cid, "aud": self.meta["token_endpoint"], "iat": now,
                      "exp": now + 60, "jti": jti}
            signing_input = (b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." +
                             b64url(json.dumps(claims).encode()))
            r, s = decode_dss_signature(priv.sign(signing_input.encode(),
                                                  ec.ECDSA(hashes.SHA256())))
            return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

        def token(a):
            return requests.post(self.meta["token_endpoint"], data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": a,
            }, timeout=HTTP_TIMEOUT)

        r = token(assertion("Ed25519", "p256-as-ed25519"))
        expect_equal((r.status_code, r.json().get("error")), (401, "invalid_client"),
                     "alg Ed25519 on a P-256 key")
        r = token(assertion("ES256", "p256-as-es256"))
        expect_equal(r.status_code, 200, f"alg ES256 on the same key ({r.text[:200]})")

    def probe_assertion_aud_revocation_endpoint(self):
        """authlib's PrivateKeyJWT() without a token_endpoint argument sets the assertion's
        aud to the URL it posts to: the revocation endpoint when revoking. Informational."""
        cid, key = self.world.ed25519_client()
        sess = self.session(cid, key, RecordingPrivateKeyJWT(alg="EdDSA"))
        tok = self.fetch(sess)  # aud = token endpoint URL: must work
        self.expect_token(tok, " ".join(GRANT_SCOPES))
        r = sess.revoke_token(self.meta["revocation_endpoint"], tok["access_token"],
                              timeout=HTTP_TIMEOUT)
        active = self.introspect(tok["access_token"]).get("active")
        assert r.status_code == 200 and active is False, (
            f"revocation with an assertion whose aud is the revocation endpoint -> "
            f"{r.status_code} {r.text[:120]} (token active: {active})")

    def wrong_key(self):
        cid, _ = self.world.ed25519_client()
        other = OKPKey.generate_key("Ed25519")
        sess = self.session(cid, other, RecordingPrivateKeyJWT(self.meta["token_endpoint"],
                                                                alg="EdDSA"))
        try:
            self.fetch(sess)
        except OAuthError as e:
            expect_equal(e.error, "invalid_client", "error for an assertion signed by another key")
        else:
            raise AssertionError("an assertion signed with an unregistered key was accepted")

    # 3. PyJWT verification against the JWKS ------------------------------------------
    def pyjwt_verify_all(self):
        assert len(self.tokens) >= 5, f"expected tokens from every auth method, have {len(self.tokens)}"
        jwks = jwt.PyJWKClient(self.meta["jwks_uri"], cache_keys=True)
        for label, cid, tok in self.tokens:
            at = tok["access_token"]
            header = jwt.get_unverified_header(at)
            expect_equal(header.get("typ"), "at+jwt", f"[{label}] header typ")
            expect_equal(header.get("alg"), "EdDSA", f"[{label}] header alg")
            key = jwks.get_signing_key_from_jwt(at)
            claims = jwt.decode(at, key.key, algorithms=["EdDSA"], audience=AUDIENCE,
                                issuer=self.issuer,
                                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub",
                                                     "jti"]})
            for c in ("client_id", "scope", "jti", "grant", "epoch"):
                assert c in claims, f"[{label}] claim {c} missing: {sorted(claims)}"
            expect_equal(claims["client_id"], cid, f"[{label}] client_id")
            expect_equal(claims["sub"], cid, f"[{label}] sub")
            expect_equal(claims["grant"], self.world.grant, f"[{label}] grant")
            expect_equal(claims["scope"], tok["scope"], f"[{label}] scope claim")
            assert isinstance(claims["epoch"], int), f"[{label}] epoch is an integer"
            assert claims["exp"] - claims["iat"] == tok["expires_in"], f"[{label}] exp - iat"
        jtis = {jwt.decode(t["access_token"], options={"verify_signature": False})["jti"]
                for _, _, t in self.tokens}
        expect_equal(len(jtis), len(self.tokens), "distinct jti per token")

    def pyjwt_rejects_wrong_audience(self):
        at = self.tokens[0][2]["access_token"]
        key = jwt.PyJWKClient(self.meta["jwks_uri"]).get_signing_key_from_jwt(at)
        try:
            jwt.decode(at, key.key, algorithms=["EdDSA"], audience="https://api.example.com/other",
                       issuer=self.issuer)
        except jwt.InvalidAudienceError:
            pass
        else:
            raise AssertionError("PyJWT accepted a foreign audience (test harness broken)")

    # 4. introspection and revocation ----------------------------------------------------
    def introspect(self, token, bearer=None):
        bearer = bearer or self.world.gateway[1]
        r = requests.post(self.meta["introspection_endpoint"], data={"token": token},
                          headers={"Authorization": f"Bearer {bearer}"}, timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 200, f"introspection status ({r.text[:200]})")
        return r.json()

    def introspection_active(self):
        for label, cid, tok in self.tokens:
            v = self.introspect(tok["access_token"])
            expect_equal(v.get("active"), True, f"[{label}] active")
            expect_equal(v.get("partner"), self.world.partner, f"[{label}] partner")
            expect_equal(v.get("grant"), self.world.grant, f"[{label}] grant")
            expect_equal(v.get("use_case"), self.world.use_case, f"[{label}] use_case")
            expect_equal(v.get("client_id"), cid, f"[{label}] client_id")
            expect_equal(v.get("scope"), tok["scope"], f"[{label}] scope")
            expect_equal(v.get("aud"), AUDIENCE, f"[{label}] aud")
            expect_equal(v.get("iss"), self.issuer, f"[{label}] iss")

    def introspection_refuses(self):
        v = self.introspect("not.a.token")
        expect_equal(v, {"active": False}, "garbage token")
        # A token re-signed by someone else (header and claims kept) is not vouched for.
        at = self.tokens[0][2]["access_token"]
        forged = at.rsplit(".", 1)[0] + "." + b64url(b"\x00" * 64)
        expect_equal(self.introspect(forged), {"active": False}, "token with a forged signature")
        # only gateway principals may introspect
        r = requests.post(self.meta["introspection_endpoint"], data={"token": at},
                          headers={"Authorization": f"Bearer {self.world.steward[1]}"},
                          timeout=HTTP_TIMEOUT)
        assert r.status_code in (401, 403), f"steward introspection -> {r.status_code}"
        r = requests.post(self.meta["introspection_endpoint"], data={"token": at},
                          timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 401, "anonymous introspection status")

    def revoke_basic(self):
        label, cid, tok = self.tokens[0]
        expect_equal(label, "client_secret_basic", "first token's method")
        at = tok["access_token"]
        expect_equal(self.introspect(at).get("active"), True, "active before revocation")
        sess = self.session(cid, self.basic_client[1], "client_secret_basic")
        r = sess.revoke_token(self.meta["revocation_endpoint"], at, timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 200, f"revocation status ({r.text[:200]})")
        expect_equal(self.introspect(at), {"active": False}, "introspection after revocation")
        # Revoking again, or revoking garbage, is still 200 (RFC 7009 §2.2).
        r = sess.revoke_token(self.meta["revocation_endpoint"], at, timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 200, "second revocation status")
        r = sess.revoke_token(self.meta["revocation_endpoint"], "garbage", timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 200, "revocation of an unknown token")
        # Other tokens of the same client stay active (revocation is per jti).
        other = next(t for lbl, c, t in self.tokens[1:] if c == cid)
        expect_equal(self.introspect(other["access_token"]).get("active"), True,
                     "another token of the same client")

    def revoke_private_key_jwt(self):
        at = self.ed_token["access_token"]
        expect_equal(self.introspect(at).get("active"), True, "active before revocation")
        r = self.ed_session.revoke_token(self.meta["revocation_endpoint"], at,
                                         token_type_hint="access_token", timeout=HTTP_TIMEOUT)
        expect_equal(r.status_code, 200, f"revocation status ({r.text[:200]})")
        expect_equal(self.introspect(at), {"active": False}, "introspection after revocation")

    def revoke_other_clients_token(self):
        # a client may not revoke a token issued to another client
        label, cid, tok = next(t for t in self.tokens if t[0] == "client_secret_post")
        bcid, bsecret = self.basic_client
        assert cid != bcid
        sess = self.session(bcid, bsecret, "client_secret_basic")
        r = sess.revoke_token(self.meta["revocation_endpoint"], tok["access_token"],
                              timeout=HTTP_TIMEOUT)
        assert r.status_code in (200, 400), f"foreign revocation status {r.status_code}"
        expect_equal(self.introspect(tok["access_token"]).get("active"), True,
                     "a token revoked by a different client stays active")

    def run(self, admin_token):
        r = self.r
        if not r.check("discovery (RFC 8414) and JWKS", self.discovery):
            return
        try:
            self.world = World(self.base, admin_token)
        except Exception as e:  # noqa: BLE001
            r.check("seed the world over the admin API", lambda: (_ for _ in ()).throw(e))
            return
        r.check("seed the world over the admin API", lambda: None)
        ok_basic = r.check("authlib client_credentials, client_secret_basic", self.client_secret_basic)
        r.check("authlib client_credentials, client_secret_post", self.client_secret_post)
        if ok_basic:
            r.check("authlib scope narrowing (scope=, resource=)", self.scope_narrowing)
            r.check("authlib scope outside the grant -> invalid_scope", self.scope_outside_grant)
            r.check("authlib foreign audience -> invalid_target", self.wrong_audience)
            r.check("authlib wrong secret -> invalid_client", self.wrong_secret)
        r.check("authlib private_key_jwt, Ed25519 (EdDSA)", self.private_key_jwt_ed25519)
        r.check("authlib private_key_jwt, P-256 (ES256)", self.private_key_jwt_es256)
        r.check("authlib private_key_jwt, unregistered key -> invalid_client", self.wrong_key)
        r.check("authlib private_key_jwt with authlib's stock 1 h assertion",
                self.private_key_jwt_authlib_default_lifetime)
        r.check("authlib private_key_jwt with alg Ed25519 (RFC 9864), token and revocation",
                self.private_key_jwt_rfc9864_ed25519_alg)
        r.check("private_key_jwt: alg Ed25519 with a P-256 key -> invalid_client",
                self.private_key_jwt_ed25519_name_with_p256_key)
        r.check("private_key_jwt revocation, assertion aud = revocation endpoint",
                self.probe_assertion_aud_revocation_endpoint)
        r.check("PyJWT verifies every access token against the JWKS", self.pyjwt_verify_all)
        r.check("PyJWT refuses a foreign audience", self.pyjwt_rejects_wrong_audience)
        r.check("introspection (RFC 7662): active tokens", self.introspection_active)
        r.check("introspection: refusals and caller roles", self.introspection_refuses)
        if ok_basic:
            r.check("authlib revoke_token (RFC 7009), client_secret_basic", self.revoke_basic)
            r.check("revocation by another client leaves the token active",
                    self.revoke_other_clients_token)
        if hasattr(self, "ed_session"):
            r.check("authlib revoke_token (RFC 7009), private_key_jwt", self.revoke_private_key_jwt)


def main():
    # joserfc warns on every "EdDSA" signature (RFC 9864 deprecates the polymorphic name);
    # Charter's metadata and JWKS use "EdDSA", so the warning is expected here.
    warnings.filterwarnings("ignore", message="EdDSA is deprecated")
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="control-plane base URL (the issuer)")
    ap.add_argument("--admin-token", required=True)
    args = ap.parse_args()
    runner = Runner()
    start = time.monotonic()
    Interop(args.base.rstrip("/"), args.admin_token, runner).run(args.admin_token)
    print(f"interop: {time.monotonic() - start:.1f} s")
    if runner.notes:
        print("interop notes (known gaps, not failures):\n  " + "\n  ".join(runner.notes))
    if runner.failed:
        print("failed checks:\n  " + "\n  ".join(runner.failed))
    print(f"{runner.passed} passed, {len(runner.failed)} failed")
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(main())
