# Sourced by scripts/demo and scripts/test: how they get root without losing
# the invoking user's Rust toolchain or their checkout.
#
# Run as root (a minimal Debian has no sudo), everything runs directly with
# root's own PATH. Run as a user, each script builds as that user and only
# the steps that need root run through sudo:
#   - sudo's secure_path drops ~/.cargo/bin, so root steps run as
#     `sudo env PATH=... CARGO_HOME=... RUSTUP_HOME=...` with the user's
#     values (absolute: sudo also resets HOME);
#   - cargo run as root after that works offline (the user fetched every
#     crate) and whatever it creates in target/ or CARGO_HOME is given back
#     to the user when the root step ends, so the checkout never ends up
#     owned by root.

# Fails, before anything is installed, when there is no cargo on PATH.
# Called as `require_cargo "$@"`: run through `sudo` by a user whose
# toolchain sudo's secure_path hid, the script starts again as that user
# (who built nothing as root yet), with their ~/.cargo/bin, and calls sudo
# itself for the root steps.
require_cargo() {
  if ! command -v cargo >/dev/null && [[ $(id -u) -eq 0 && -n "${SUDO_USER:-}" && "${SUDO_USER}" != root ]]; then
    local user_home
    user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [[ -n "$user_home" && -x "$user_home/.cargo/bin/cargo" ]]; then
      echo "$(basename "$0"): run through sudo: going on as $SUDO_USER with their Rust toolchain (root steps go through sudo)" >&2
      exec sudo -u "$SUDO_USER" env HOME="$user_home" PATH="$user_home/.cargo/bin:$PATH" \
        ${CI:+CI="$CI"} ${TEST_LOG_DIR:+TEST_LOG_DIR="$TEST_LOG_DIR"} "$0" "$@"
    fi
  fi
  if ! command -v cargo >/dev/null; then
    echo "$(basename "$0"): no Rust toolchain (cargo) on PATH; install one with rustup (Rust >= 1.82):" >&2
    echo "  curl --proto '=https' -sSf https://sh.rustup.rs | sh" >&2
    if [[ -n "${SUDO_USER:-}" ]]; then
      echo "(run this script as $SUDO_USER without sudo: it calls sudo itself for the steps that need root)" >&2
    fi
    exit 1
  fi
}

# Runs "$@" as root: directly when we are root, else through sudo with this
# user's toolchain environment.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
    return
  fi
  if ! command -v sudo >/dev/null; then
    echo "$(basename "$0"): needs root: run it as root, or install sudo" >&2
    exit 1
  fi
  local cargo_home rustup_home
  cargo_home=$(cd "${CARGO_HOME:-$HOME/.cargo}" 2>/dev/null && pwd || echo "${CARGO_HOME:-$HOME/.cargo}")
  rustup_home=$(cd "${RUSTUP_HOME:-$HOME/.rustup}" 2>/dev/null && pwd || echo "${RUSTUP_HOME:-$HOME/.rustup}")
  sudo env \
    PATH="$PATH" CARGO_HOME="$cargo_home" RUSTUP_HOME="$rustup_home" \
    CARGO_NET_OFFLINE=true LCD_GIVE_BACK_TO="$(id -u):$(id -g)" \
    ${CI:+CI="$CI"} ${TEST_LOG_DIR:+TEST_LOG_DIR="$TEST_LOG_DIR"} \
    ${CARGO_TARGET_DIR:+CARGO_TARGET_DIR="$CARGO_TARGET_DIR"} \
    "$@"
}

# In a root step started by as_root: on exit, gives back to the invoking
# user what root created in target/ and in the user's CARGO_HOME (only
# root-owned files change owner).
give_back_on_exit() {
  if [[ $(id -u) -eq 0 && -n "${LCD_GIVE_BACK_TO:-}" ]]; then
    trap 'chown -R --from=0:0 "$LCD_GIVE_BACK_TO" "${CARGO_TARGET_DIR:-target}" "${CARGO_HOME:-/nonexistent}" 2>/dev/null || true' EXIT
  fi
}
