#!/usr/bin/env bash
# setup-deps.sh: install what building and testing lastgasp needs on Debian 12
# (QEMU for the scenarios, kmod for depmod, xz for the image, iproute2 and
# dnsmasq for network tests, OVMF for the EFI board, rsyslog and systemd-journal-remote for the sink
# tests; qemu-system-arm, device-tree-compiler and Debian's arm64 architecture for
# the qemu-aarch64 board) and download the Go modules. Safe to re-run.
set -eu
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
# Debian's arm64 kernel packages (qemu-aarch64 and the arm64 hardware boards) are
# fetched as linux-image-arm64:arm64 (apt-get download, never installed): dpkg
# must know the architecture, and apt must have its package lists.
arm64=
case " $(dpkg --print-foreign-architectures | tr '\n' ' ') " in
  *" arm64 "*) ;;
  *) $SUDO dpkg --add-architecture arm64; arm64=1 ;;
esac
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm) # the qemu-aarch64 board's scenarios (arm64-*)
command -v fdtget >/dev/null && command -v fdtoverlay >/dev/null || need+=(device-tree-compiler) # dtc: the DT ramoops node (scripts/dtb-ramoops.sh), the Pi overlays
command -v depmod >/dev/null || need+=(kmod)
command -v xz >/dev/null || need+=(xz-utils)
command -v ip >/dev/null || need+=(iproute2)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v cpio >/dev/null || need+=(cpio)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || need+=(ovmf) # UEFI firmware for the EFI board's scenarios (pstore-efi-*)
[ -x /usr/sbin/rsyslogd ] || command -v rsyslogd >/dev/null || need+=(rsyslog)
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote) # journald sink tests (journalctl comes with systemd)
command -v chromium >/dev/null || need+=(chromium) # headless browser of the crash view scenarios (crash-signatures)
# PostgreSQL for the shared crash store's tests: store/pgstore/pgtest runs its own
# throwaway cluster as an unprivileged user; the package's system service is not used.
pg=; ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { need+=(postgresql); pg=1; }
if [ ${#need[@]} -gt 0 ] || [ -n "$arm64" ]; then
  $SUDO apt-get update -qq
fi
if [ ${#need[@]} -gt 0 ]; then
  # A policy-rc.d that says "no" keeps the package from starting its cluster service.
  norc=; if [ -n "$pg" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod 755 /usr/sbin/policy-rc.d && norc=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  [ -z "$norc" ] || $SUDO rm -f /usr/sbin/policy-rc.d
  # Without policy-rc.d or systemd the default cluster may still be up: stop it, nothing uses it.
  [ -z "$pg" ] || ! command -v pg_lsclusters >/dev/null || pg_lsclusters -h 2>/dev/null | while read -r v c _; do $SUDO pg_ctlcluster "$v" "$c" stop 2>/dev/null || true; done
fi
# apt-get download (scripts/fetch-kernel.sh) needs package lists.
ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1 || $SUDO apt-get update -qq
go mod download
