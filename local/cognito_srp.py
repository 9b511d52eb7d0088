"""The server half of Cognito's SRP sign-in (USER_SRP_AUTH, PASSWORD_VERIFIER), as the user pool computes it, so the
local stack checks a password the browser never sends. The client half is the console's: amazon-cognito-identity-js.

SRP-6a over RFC 5054's 3072-bit group with SHA-256, as Cognito uses it: k = H(N | g), x = H(salt | H(pool name |
user id | ":" | password)), u = H(A | B), the session key HKDF(S, salt u, info "Caldera Derived Key") cut to 16
bytes, and the claim HMAC(key, pool name | user id | secret block | timestamp). Numbers are hashed as Cognito pads
them: even-length hex with a 00 byte before a set high bit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF", 16)
G = 2
INFO = b"Caldera Derived Key"


def pad_hex(value: int) -> str:
    text = format(value, "x")
    text = "0" + text if len(text) % 2 else text
    return "00" + text if text[0] in "89abcdef" else text


def hex_hash(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


K = int(hex_hash(pad_hex(N) + pad_hex(G)), 16)


def pool_name(user_pool_id: str) -> str:
    return user_pool_id.split("_", 1)[1]


def private_x(pool: str, user_id: str, password: str, salt: int) -> int:
    inner = hashlib.sha256(f"{pool}{user_id}:{password}".encode()).hexdigest()
    return int(hex_hash(pad_hex(salt) + inner), 16)


def session_key(s_value: int, u_value: int) -> bytes:
    prk = hmac.new(bytes.fromhex(pad_hex(u_value)), bytes.fromhex(pad_hex(s_value)), hashlib.sha256).digest()
    return hmac.new(prk, INFO + b"\x01", hashlib.sha256).digest()[:16]


def claim_signature(key: bytes, pool: str, user_id: str, secret_block: str, timestamp: str) -> str:
    message = pool.encode() + user_id.encode() + base64.b64decode(secret_block) + timestamp.encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


@dataclass
class Challenge:
    """One sign-in in progress: what the server keeps between InitiateAuth and RespondToAuthChallenge."""

    pool: str
    user_id: str
    a_value: int
    b_value: int  # the server's secret b
    big_b: int
    verifier: int
    secret_block: str

    @classmethod
    def start(cls, user_pool_id: str, user_id: str, password: str, srp_a: str) -> tuple[Challenge, int]:
        """(the challenge, its salt). Refuses an A that is 0 mod N (SRP-6a's safeguard)."""
        a_value = int(srp_a, 16)
        if a_value % N == 0:
            raise ValueError("SRP_A is 0 mod N")
        pool = pool_name(user_pool_id)
        salt = secrets.randbits(128)
        verifier = pow(G, private_x(pool, user_id, password, salt), N)
        b_value = secrets.randbits(256)
        big_b = (K * verifier + pow(G, b_value, N)) % N
        secret_block = base64.b64encode(secrets.token_bytes(64)).decode()
        return cls(pool, user_id, a_value, b_value, big_b, verifier, secret_block), salt

    def expected_signature(self, timestamp: str) -> str:
        u_value = int(hex_hash(pad_hex(self.a_value) + pad_hex(self.big_b)), 16)
        s_value = pow(self.a_value * pow(self.verifier, u_value, N), self.b_value, N)
        return claim_signature(session_key(s_value, u_value), self.pool, self.user_id, self.secret_block, timestamp)

    def verify(self, signature: str, timestamp: str) -> bool:
        return hmac.compare_digest(self.expected_signature(timestamp), signature or "")
