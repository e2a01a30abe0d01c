# shellcheck shell=bash
# Sourced by scripts/sanity and scripts/integration: what both need to run
# ansible-test offline on a copy of this repository.

# ansible-test --venv bootstraps pip with a get-pip script from a host outside
# the package registries. Cache a stand-in that seeds pip with ensurepip and
# installs the requested pip from PyPI, for the pip version ansible-test pins.
ansible_test_pip_standin() {
    local ansible_test pip_version cache
    ansible_test=$(python3 -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
    pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',*$/\1/p" "$ansible_test/_internal/python_requirements.py" | head -n1)
    pip_version=${pip_version:-24.2}
    cache="$HOME/.ansible/test/cache"
    mkdir -p "$cache"
    cat > "$cache/get_pip_${pip_version//./_}.py" <<'PY'
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PY
}

# Copy the tracked and untracked-not-ignored files (less any git pathspecs
# given after ROOT, e.g. ':!tests/specs') to ROOT, laid out as
# ansible_collections/vic/containers, and make ROOT its own git repository:
# ansible-test resolves the working directory, so a symlinked tree does not do,
# and it would otherwise find this repository's .git above ROOT, ask git for
# the files and get none (.build/ is ignored here).
copy_collection() {
    local root=$1
    shift
    mkdir -p "$root"
    # (--ignore-missing-args: files deleted but not yet staged are still listed.)
    git ls-files -co --exclude-standard -z -- . "$@" |
        rsync -a --ignore-missing-args --from0 --files-from=- ./ "$root/"
    git -C "$root" init -q
}
