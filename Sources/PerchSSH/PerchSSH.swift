// Filled in by a later issue; see ARCHITECTURE.md for what this module owns.
enum PerchSSHPlaceholder {}
