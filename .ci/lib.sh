# Shared by .ci/run and .ci/smoke.sh: read the commands CI runs out of the documents that
# show them to users, so that a document whose command breaks turns CI red.

# doc_cmd FILE MARKER: the first command in a ``` block after the line that starts with
# MARKER (the marker may stand before the block or inside it, e.g. as a comment line).
# Comment and blank lines are skipped, backslash continuations joined, a trailing
# "# comment" dropped. Prints nothing when there is no such command.
doc_cmd() {
    awk -v m="$2" '
        /^```/ { inb = !inb; if (found && !inb) exit; next }
        !found { if (index($0, m) == 1) found = 1; next }
        !inb { next }
        /^[[:space:]]*(#|$)/ { next }
        { line = line $0
          if (sub(/\\[[:space:]]*$/, " ", line)) next
          sub(/[[:space:]]+#.*$/, "", line); print line; exit }
    ' "$1"
}

# doc_block FILE MARKER: every command line of that block (for a tour of several lines).
doc_block() {
    awk -v m="$2" '
        /^```/ { inb = !inb; if (found && !inb) exit; next }
        !found { if (index($0, m) == 1) found = 1; next }
        !inb { next }
        /^[[:space:]]*(#|$)/ { next }
        { line = line $0
          if (sub(/\\[[:space:]]*$/, " ", line)) next
          sub(/[[:space:]]+#.*$/, "", line); print line; line = "" }
    ' "$1"
}

# need_cmd NAME...: fails loudly when a documented command could not be found.
need_cmd() {
    local v
    for v in "$@"; do
        [[ -n "${!v}" ]] || { echo "CI: no command found for $v in the docs" >&2; exit 1; }
    done
}
