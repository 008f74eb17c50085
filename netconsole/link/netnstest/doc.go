// Package netnstest gives tests throwaway network namespaces (network_namespaces(7))
// joined by veth pairs, and runs Go code and processes inside them. The
// namespaces are anonymous (unshare(2), held by file descriptors): nothing is
// mounted and nothing is left behind in /run/netns; they vanish with the test.
// Nothing here touches the initial namespace's interfaces, addresses or routes.
package netnstest
