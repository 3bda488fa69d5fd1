"""Write a git-ignored .env with fresh development keys (used by `make run`).

Never overwrites an existing file: the keys decrypt the local database.
"""

import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet


def main(path: str) -> None:
    target = Path(path)
    if target.exists():
        return
    target.write_text(
        "# Development settings written by `make run`. Not for production; never commit.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"FIELD_ENCRYPTION_KEYS={Fernet.generate_key().decode()}\n"
        f"BLIND_INDEX_KEY={secrets.token_urlsafe(32)}\n"
        f"AUDIT_KEY={secrets.token_urlsafe(32)}\n"
    )
    target.chmod(0o600)
    print(f"Wrote {target} with fresh development keys.")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".env")
