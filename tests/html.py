"""Reading a page's HTML in privacy assertions."""

import re

# A CSP nonce or a CSRF token is random letters and digits, which by chance can hold a
# short pseudonym ("Ash" was once inside a nonce): such values are taken out before a test
# looks for a name. Anything with a space or punctuation of its own stays.
_RANDOM_VALUES = re.compile(r'(nonce|value)="[A-Za-z0-9+/=_-]{20,}"')


def without_random_tokens(html: str | bytes) -> str:
    if isinstance(html, bytes):
        html = html.decode()
    return _RANDOM_VALUES.sub(r'\1=""', html)
