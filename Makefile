# lastgasp — see README.md.
#   make run                 build the image, boot it in QEMU with a collector on loopback, show the logs arriving
#   make test                unit tests (with fuzz seeds) + QEMU end-to-end scenarios (what .ci/run calls)
#   make image BOARD=...     build a board's initramfs and print its size
#   make image-tls           the default image with an https:// upload URL (boards/qemu-x86_64-tls.board)
#   make image-lab           the lab image: test-only modules, agent without TLS (boards/qemu-x86_64-lab.board)
#   make image-efi           the EFI board's image (boards/qemu-x86_64-efi.board, OVMF)
#   make images-hw           images of the real-hardware boards (not booted here), sizes printed
#   make image-612           the 6.12 board's image (boards/qemu-x86_64-6.12.board, netconsole userdata)
#   make image-arm64         the arm64 board's image (boards/qemu-aarch64.board, QEMU virt, DT ramoops)
#   make e2e [SCENARIO=x]    QEMU scenarios only
#   make timing              boot 5 times and print the boot-to-armed breakdown (and median) from kernel timestamps
#   make bench-collector     collector throughput and memory, 256 hosts to a million (minutes; not part of test;
#                            FLEET_ONLY=1 etc. run one section, see scripts/bench-collector.sh)

BOARD    ?= qemu-x86_64
SCENARIO ?=
BUILD    ?= build
BOARDF   := boards/$(BOARD).board
ARCH     := $(shell sed -n 's/^arch *= *//p' $(BOARDF))
KPKG     := $(shell sed -n 's/^kernel.package *= *//p' $(BOARDF))
# One kernel dir per kernel package (not per architecture), so that two boards
# of one architecture can boot different kernels (qemu-x86_64 on 6.1,
# qemu-x86_64-6.12 on 6.12). $(call kdir,BOARDFILE) is a board's.
kdir      = $(BUILD)/kernel/$(shell sed -n 's/^kernel.package *= *//p' $(1))
KDIR     := $(call kdir,$(BOARDF))
IMAGE    := $(BUILD)/$(BOARD)/initramfs.cpio.xz
# What QEMU boots of the board's kernel: the ELF vmlinux on x86 (fast to
# load, no decompressor run), the Image on arm64.
KIMG     := $(KDIR)/$(if $(filter arm64,$(ARCH)),Image,vmlinux)
LASTGASPD := $(BUILD)/bin/lastgaspd
# The default image with an https:// upload URL (every agent has TLS unless
# built with lastgasp_notls), for the pstore-tls scenario.
TLSBOARDF := boards/qemu-x86_64-tls.board
TLSKDIR   := $(call kdir,$(TLSBOARDF))
TLSIMAGE  := $(BUILD)/qemu-x86_64-tls/initramfs.cpio.xz
# The lab board: the default one plus the modules only QEMU scenarios use
# (e1000, virtio_blk + minix, 8021q), agent built with lastgasp_notls.
LABBOARDF := boards/qemu-x86_64-lab.board
LABKDIR   := $(call kdir,$(LABBOARDF))
LABIMAGE  := $(BUILD)/qemu-x86_64-lab/initramfs.cpio.xz
# The EFI board (OVMF firmware, crash records in EFI variables), for the
# pstore-efi-* scenarios; OVMF boots the bzImage (its EFI stub), not vmlinux.
EFIBOARDF := boards/qemu-x86_64-efi.board
EFIKDIR   := $(call kdir,$(EFIBOARDF))
EFIIMAGE  := $(BUILD)/qemu-x86_64-efi/initramfs.cpio.xz
# The 6.12 board (Debian's linux-image-6.12-amd64: netconsole userdata), for
# userdata-identity and panic-roundtrip-6.12.
B612BOARDF := boards/qemu-x86_64-6.12.board
B612KDIR   := $(call kdir,$(B612BOARDF))
B612IMAGE  := $(BUILD)/qemu-x86_64-6.12/initramfs.cpio.xz
# The arm64 board (QEMU virt under TCG, Debian's linux-image-arm64, ramoops
# from a device-tree node), for the arm64-* scenarios; QEMU boots the arm64
# Image that scripts/fetch-kernel.sh writes into the package's kernel dir.
A64BOARDF := boards/qemu-aarch64.board
A64KDIR   := $(call kdir,$(A64BOARDF))
A64IMAGE  := $(BUILD)/qemu-aarch64/initramfs.cpio.xz
GOSRC    := $(shell find . -name '*.go' -not -path './build*') go.mod go.sum

.PHONY: all kernel image image-tls image-lab image-efi image-612 image-arm64 images-hw hw-deps collector run test unit e2e timing fuzz clean deps bench-collector

all: image collector

# Installs only what is missing (a few command -v checks when nothing is), so
# that make run and make test are the only two commands a newcomer types.
deps:
	scripts/setup-deps.sh

kernel: $(KDIR)/kver
# Any board's kernel: the package is the directory's name, the Debian
# architecture that of the first board file naming the package.
$(BUILD)/kernel/%/kver: | deps
	scripts/fetch-kernel.sh $* $(@D) $$(sed -n 's/^arch *= *//p' $$(grep -l '^kernel.package *= *$*$$' boards/*.board | head -1))

image: $(IMAGE)
$(IMAGE): $(KDIR)/kver $(GOSRC) $(BOARDF) | deps
	go run ./cmd/lastgasp-image -board $(BOARDF) -kernel $(KDIR) -o $(IMAGE)

image-tls: $(TLSIMAGE)
$(TLSIMAGE): $(TLSKDIR)/kver $(GOSRC) $(TLSBOARDF) | deps
	go run ./cmd/lastgasp-image -board $(TLSBOARDF) -kernel $(TLSKDIR) -o $(TLSIMAGE)

image-lab: $(LABIMAGE)
$(LABIMAGE): $(LABKDIR)/kver $(GOSRC) $(LABBOARDF) | deps
	go run ./cmd/lastgasp-image -board $(LABBOARDF) -kernel $(LABKDIR) -o $(LABIMAGE)

image-efi: $(EFIIMAGE)
$(EFIIMAGE): $(EFIKDIR)/kver $(GOSRC) $(EFIBOARDF) | deps
	go run ./cmd/lastgasp-image -board $(EFIBOARDF) -kernel $(EFIKDIR) -o $(EFIIMAGE)

image-612: $(B612IMAGE)
$(B612IMAGE): $(B612KDIR)/kver $(GOSRC) $(B612BOARDF) | deps
	go run ./cmd/lastgasp-image -board $(B612BOARDF) -kernel $(B612KDIR) -o $(B612IMAGE)

image-arm64: $(A64IMAGE)
$(A64IMAGE): $(A64KDIR)/kver $(GOSRC) $(A64BOARDF) | deps
	go run ./cmd/lastgasp-image -board $(A64BOARDF) -kernel $(A64KDIR) -o $(A64IMAGE)

# Real-hardware profiles (not booted here): each image is built against its
# board's kernel package (the module guard runs; the size is printed), and the
# Raspberry Pi ramoops overlays are merged into the package's DTBs and checked.
# The arm64 ones need Debian's arm64 packages (dpkg --add-architecture arm64:
# scripts/setup-deps.sh does it; hw-deps checks again for a machine set up
# before it did).
HWBOARDS := generic-x86_64-server generic-arm64-server raspberrypi-4 raspberrypi-5
define hwimage
$(call kdir,boards/$(1).board)/kver: | hw-deps
$(BUILD)/$(1)/initramfs.cpio.xz: $(call kdir,boards/$(1).board)/kver $(GOSRC) boards/$(1).board | deps hw-deps
	go run ./cmd/lastgasp-image -board boards/$(1).board -kernel $(call kdir,boards/$(1).board) -o $$@
endef
$(foreach b,$(HWBOARDS),$(eval $(call hwimage,$(b))))
# check-dt-overlay BOARD DTB: the board's overlay merged into its kernel package's DTB.
check-dt-overlay = scripts/check-dt-overlay.sh boards/$(1).board boards/$(1)-ramoops-overlay.dts \
	$$(ls $(call kdir,boards/$(1).board)/root/usr/lib/linux-image-*/broadcom/$(2).dtb) $(BUILD)/$(1)/dt
hw-deps:
	@case " $$(dpkg --print-foreign-architectures | tr '\n' ' ') " in *" arm64 "*) ;; *) \
	  echo "images-hw: dpkg --add-architecture arm64 (Debian's arm64 kernel packages)"; \
	  S=; [ "$$(id -u)" = 0 ] || S=sudo; $$S dpkg --add-architecture arm64 && $$S apt-get update -qq;; esac
	@command -v fdtoverlay >/dev/null || { S=; [ "$$(id -u)" = 0 ] || S=sudo; $$S apt-get install -y -qq device-tree-compiler; }
images-hw: $(foreach b,$(HWBOARDS),$(BUILD)/$(b)/initramfs.cpio.xz)
	$(call check-dt-overlay,raspberrypi-4,bcm2711-rpi-4-b)
	$(call check-dt-overlay,raspberrypi-5,bcm2712-rpi-5-b)
	@for b in $(HWBOARDS); do printf 'images-hw: %-22s %9d bytes xz  (kernel %s)\n' $$b \
	  $$(stat -c %s $(BUILD)/$$b/initramfs.cpio.xz) $$(cat $(BUILD)/kernel/$$(sed -n 's/^kernel.package *= *//p' boards/$$b.board)/kver); done

collector: $(LASTGASPD)
$(LASTGASPD): $(GOSRC)
	go build -o $(LASTGASPD) ./cmd/lastgaspd

run: deps image collector
	go run ./scripts/e2e -demo -kernel $(KIMG) -initrd $(IMAGE) -board $(BOARDF) -collector $(LASTGASPD) -work $(BUILD)/e2e

unit: deps
	go vet ./...
	go test ./...
	# The agent has TLS unless built with this tag (lab images): test that variant too.
	go vet -tags lastgasp_notls ./pstore/ship/... ./agent/ ./cmd/lastgasp/
	go test -tags lastgasp_notls ./pstore/ship/... ./agent/ ./cmd/lastgasp/

e2e: image image-tls image-lab image-efi image-612 image-arm64 collector
	go run ./scripts/e2e -kernel $(KDIR)/vmlinux -initrd $(IMAGE) -initrd-tls $(TLSIMAGE) -initrd-lab $(LABIMAGE) -initrd-efi $(EFIIMAGE) -kernel-efi $(EFIKDIR)/bzImage -kernel-612 $(B612KDIR)/vmlinux -initrd-612 $(B612IMAGE) -kernel-arm64 $(A64KDIR)/Image -initrd-arm64 $(A64IMAGE) -board $(BOARDF) -collector $(LASTGASPD) -work $(BUILD)/e2e $(if $(SCENARIO),-scenario $(SCENARIO))

test: unit images-hw e2e

timing: image collector
	go run ./scripts/e2e -timing 5 -kernel $(KIMG) -initrd $(IMAGE) -board $(BOARDF) -collector $(LASTGASPD) -work $(BUILD)/e2e

clean:
	rm -rf $(BUILD)

bench-collector: collector
	go build -o $(BUILD)/bin/lastgasp-load ./cmd/lastgasp-load
	scripts/bench-collector.sh $(BUILD)/bin

# CI guards (make test runs them): the default image (boards/qemu-x86_64.board,
# whatever BOARD is) stays <= 2,000,000 bytes xz, and the agent with its
# default tags links no net/http, and links crypto/tls (TLS uploads are the
# default) (scripts/guards; a failure names the figure and the limit).
# size-table: per-package bytes of the agent and the busybox.
DEFIMAGE := $(BUILD)/qemu-x86_64/initramfs.cpio.xz
.PHONY: guards size-table
guards:
	$(MAKE) --no-print-directory image BOARD=qemu-x86_64 BUILD=$(BUILD)
	go run ./scripts/guards -image $(DEFIMAGE) -limit 2000000 -agent ./cmd/lastgasp -forbid net/http -require crypto/tls
test: guards
size-table:
	BUILD=$(BUILD) scripts/size-table.sh $(BOARD)
