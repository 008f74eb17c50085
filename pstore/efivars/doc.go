// Package efivars accounts for the EFI variables pstore's efi backend
// (drivers/firmware/efi/efi-pstore.c, CONFIG_EFI_VARS_PSTORE) writes, so that
// crash records never take more than a board-set share of the firmware's
// variable store (NVRAM), and reads an EDK2/OVMF variable store file from the
// host side.
//
// On Linux 6.1 efi-pstore writes each part of a crash as one non-volatile
// variable of at most 1024 bytes named "dump-type<type>-<part>-<count>-<time>-<C|D>"
// under LINUX_EFI_CRASH_GUID (cfc8fc79-be2e-4ddc-97f0-9f98bfe298a0); pstore
// shows it as dmesg-efi-<id>, id = (time*100+part)*1000+count, and unlinking
// that file deletes the variable. efivarfs (Documentation/filesystems/efivarfs.rst)
// lists every variable as <name>-<guid>, each file 4 bytes of attributes then
// the data. efivarfs' statfs reports the firmware's QueryVariableInfo
// (total and remaining variable space) on the Debian 6.1 kernel measured
// here: 262,044 bytes total for OVMF_VARS_4M.fd; where a kernel reports no
// blocks the board names the store size instead.
//
// The store file layout (ParseStore) is EDK2's VARIABLE_STORE_HEADER and
// AUTHENTICATED_VARIABLE_HEADER (MdeModulePkg/Include/Guid/VariableFormat.h)
// inside the firmware volume of OVMF_VARS.fd.
package efivars
