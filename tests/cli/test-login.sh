#!/bin/sh
# whittle-cli login / logout without a Secret Service (the tests have no keyring daemon): the
# token goes to $HF_HOME/token with mode 0600 and the fallback is said plainly; --no-file
# refuses; the token is never printed; a malformed token is refused; logout removes the file.
set -u
cli="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if [ "$1" != "$2" ]; then echo "FAIL: $3: got '$1', want '$2'"; fail=1; else echo "ok: $3"; fi; }
export HF_HOME="$tmp/hf" WH_NO_SECRET_SERVICE=1
unset HF_TOKEN HF_TOKEN_PATH

echo hf_TestToken123 | "$cli" login --token-stdin --no-file >"$tmp/out" 2>"$tmp/err"
check "$?" 1 "--no-file without a keyring fails"
grep -q "no Secret Service" "$tmp/err"; check "$?" 0 "the failure says there is no Secret Service"
[ -e "$HF_HOME/token" ]; check "$?" 1 "nothing written with --no-file"

echo hf_TestToken123 | "$cli" login --token-stdin >"$tmp/out" 2>"$tmp/err"
check "$?" 0 "login --token-stdin exits 0"
grep -q "saved to $HF_HOME/token" "$tmp/err"; check "$?" 0 "the fallback file is named"
check "$(cat "$HF_HOME/token")" "hf_TestToken123" "token file content"
check "$(stat -c %a "$HF_HOME/token")" 600 "token file readable only by the user"
grep -q hf_TestToken123 "$tmp/out" "$tmp/err"; check "$?" 1 "the token is never printed"

printf 'hf_bad token\n' | "$cli" login --token-stdin 2>"$tmp/err" >/dev/null
check "$?" 1 "a token with a space is refused"
grep -q "hf_bad" "$tmp/err"; check "$?" 1 "the refusal does not quote the token"
"$cli" login hf_OnTheCommandLine 2>/dev/null; check "$?" 2 "a token as an argument is a usage error"
"$cli" login </dev/null 2>/dev/null; check "$?" 2 "no terminal and no --token-stdin is a usage error"

"$cli" logout 2>"$tmp/err"; check "$?" 0 "logout exits 0"
[ -e "$HF_HOME/token" ]; check "$?" 1 "logout removed the token file"
grep -q "removed $HF_HOME/token" "$tmp/err"; check "$?" 0 "logout says what it removed"
exit $fail
