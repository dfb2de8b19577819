"""Adapters that read Glance's policy and property-protection files: `OsloPolicy`
implements `skylens.domain.ports.Policy` with oslo.policy, `ProtectionsFile`
implements `PropertyProtections`. The rules themselves (Glance's defaults and
`BuiltinPolicy`) are `skylens.domain.policy`."""
