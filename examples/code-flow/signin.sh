#!/bin/sh
# Sign in through an app with the authorization-code flow and PKCE, with curl and openssl only
# (decision 0035; docs/sign-in.md). What to read and paste goes to stderr; the token endpoint's
# JSON answer goes to stdout, so `(umask 077; sh signin.sh > tokens.json)` keeps it privately
# (it holds a refresh token).
#
#   CLIENT_ID=app_… sh signin.sh
#   GATEWAY=https://social.agency.example CLIENT_ID=app_… SCOPE=read sh signin.sh
#
# The app is registered with REDIRECT_URI (http://127.0.0.1/callback by default). Nothing listens
# there: the browser shows that it cannot connect, and its address bar holds the code, which is
# what you paste back (the whole address, or the code alone).
set -eu

GATEWAY=${GATEWAY:-http://127.0.0.1:8000}
CLIENT_ID=${CLIENT_ID:?set CLIENT_ID to the app id (app_…)}
REDIRECT_URI=${REDIRECT_URI:-http://127.0.0.1/callback}
SCOPE=${SCOPE:-read write}

say() { printf '%s\n' "$*" >&2; }

# base64url without padding (RFC 4648 §5), as PKCE wants it
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# percent-encodes every byte but RFC 3986's unreserved characters
urlencode() {
  printf %s "$1" | od -An -v -tx1 | tr -s ' ' '\n' | while read -r byte; do
    case $byte in
      '') ;;
      2d | 2e | 5f | 7e | 3[0-9] | 4[1-9a-f] | 5[0-9a] | 6[1-9a-f] | 7[0-9a])
        # shellcheck disable=SC2059 # the format is the character's octal escape
        printf "\\$(printf %03o "0x$byte")" ;;
      *) printf %%%s "$(printf %s "$byte" | tr a-f A-F)" ;;
    esac
  done
}

# the value of one parameter of the pasted query (the first, undecoded: ours need no decoding)
param() { printf %s "$query" | tr '&' '\n' | sed -n "s/^$1=//p" | head -n 1; }

# 1. A random verifier (64 characters of A-Z a-z 0-9 - _), its S256 challenge, a random state.
verifier=$(openssl rand 48 | b64url)
challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | b64url)
state=$(openssl rand -hex 16)

# 2. The person signs in and chooses a persona in the browser.
say "Open this address in a browser, sign in and choose a persona:"
say ""
say "$GATEWAY/oauth/authorize?response_type=code&client_id=$(urlencode "$CLIENT_ID")&redirect_uri=$(urlencode "$REDIRECT_URI")&scope=$(urlencode "$SCOPE")&state=$state&code_challenge=$challenge&code_challenge_method=S256"
say ""
say "The browser then goes to $REDIRECT_URI?code=… ; paste that whole address (or the code):"
IFS= read -r answer || true
answer=$(printf %s "$answer" | tr -d ' \t\r')

# 3. The answer: an error, or a code whose state must be ours.
case $answer in
  *\?*)
    query=${answer#*\?}
    query=${query%%#*}
    if [ -n "$(param error)" ]; then
      say "The sign-in was not completed: $(param error): $(param error_description | tr + ' ')"
      exit 1
    fi
    if [ "$(param state)" != "$state" ]; then
      say "That address does not carry this sign-in's state: it belongs to another sign-in."
      exit 1
    fi
    code=$(param code)
    ;;
  *) code=$answer ;;
esac
if [ -z "$code" ]; then
  say "No code in that answer."
  exit 1
fi

# 4. The code and the verifier for tokens, within a minute, once.
if ! curl -sS --fail-with-body -w '\n' "$GATEWAY/api/v1/auth/token" \
  --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$code" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" \
  --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "code_verifier=$verifier"; then
  say "The token endpoint refused the code (its answer is above)."
  exit 1
fi
