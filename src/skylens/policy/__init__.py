"""Policy adapters: implementations of `skylens.domain.ports.Policy`."""
