"""The data exchange between TaskManagers: result partitions on the producing side, input channels that
read them over gRPC streams with credit-based flow control on the consuming side."""
