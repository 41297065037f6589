"""Pure builders: functions of the typed config (or of a component's arguments) that return plain
data (dicts, HCL text, policy text, manifests, IAM documents). No Pulumi, no I/O, tested directly."""
