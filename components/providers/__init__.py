"""Dynamic providers: code Pulumi stores in the state and runs for create, update, refresh and destroy."""
