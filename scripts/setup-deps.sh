#!/usr/bin/env bash
# setup-deps.sh: install what building and testing lastgasp needs on Debian 12
# (QEMU for the scenarios, kmod for depmod, xz for the image, iproute2 and
# dnsmasq for network tests, OVMF for the EFI board, rsyslog and systemd-journal-remote for the sink
# tests) and download the Go modules. Safe to re-run.
set -eu
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v depmod >/dev/null || need+=(kmod)
command -v xz >/dev/null || need+=(xz-utils)
command -v ip >/dev/null || need+=(iproute2)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v cpio >/dev/null || need+=(cpio)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || need+=(ovmf) # UEFI firmware for the EFI board's scenarios (pstore-efi-*)
[ -x /usr/sbin/rsyslogd ] || command -v rsyslogd >/dev/null || need+=(rsyslog)
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote) # journald sink tests (journalctl comes with systemd)
command -v chromium >/dev/null || need+=(chromium) # headless browser of the crash view scenarios (crash-signatures)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# apt-get download (scripts/fetch-kernel.sh) needs package lists.
ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1 || { SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO apt-get update -qq; }
go mod download
