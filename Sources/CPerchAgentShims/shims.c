// CPerchAgentShims is header-only (static inline); this file exists because SwiftPM C targets need a source.
