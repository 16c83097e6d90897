# shellcheck shell=bash
# Secret helper for the images' start scripts (sourced, not executed).
# A secret X arrives as the variable X or, preferably, as a file named by X_FILE
# (a compose secret or an ACI secret volume at /run/secrets/<name>).
if ! declare -F _log_fatal > /dev/null; then
    # shellcheck source=/dev/null
    source /usr/local/lib/aci-research/log.sh
fi

# read_secret NAME: print the value of NAME, else the contents of the file named by
# NAME_FILE, else nothing. An unreadable file is fatal (exit 2, one line on stderr).
read_secret() {
    local name=$1 file_var="${1}_FILE"
    if [ -n "${!name:-}" ]; then
        printf '%s' "${!name}"
    elif [ -n "${!file_var:-}" ]; then
        [ -r "${!file_var}" ] || _log_fatal "$file_var=${!file_var} is not a readable file"
        cat "${!file_var}"
    fi
}
