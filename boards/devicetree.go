package boards

import "fmt"

// Where a board's ramoops region comes from (ramoops.source).
const (
	// RamoopsFromParams: the agent passes the region as ramoops module
	// parameters (ramoops.mem_address and the rest); x86, where the region
	// is reserved with memmap= on the kernel command line.
	RamoopsFromParams = "params"
	// RamoopsFromDeviceTree: the region is a device-tree node under
	// /reserved-memory with compatible = "ramoops" (the kernel creates
	// the platform device, ramoops.ko binds to it when loaded without
	// parameters). ramoops.mem_address and the sizes, if the board gives
	// them, are what the node must say (the agent refuses a node that
	// disagrees) and what scripts/dtb-ramoops.sh writes into a DTB.
	RamoopsFromDeviceTree = "devicetree"
)

// dtKey sets ramoops.source; ok is false for any other key.
func (b *Board) dtKey(k, v string) (ok bool, err error) {
	if k != "ramoops.source" {
		return false, nil
	}
	switch v {
	case RamoopsFromParams:
		b.Ramoops.FromDT = false
	case RamoopsFromDeviceTree, "dt":
		b.Ramoops.FromDT = true
	default:
		return true, fmt.Errorf("want %s or %s, got %q: %w", RamoopsFromParams, RamoopsFromDeviceTree, v, ErrInvalid)
	}
	return true, nil
}
