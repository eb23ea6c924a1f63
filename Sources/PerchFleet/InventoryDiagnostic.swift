import PerchProfiles

/// One problem in an inventory, at the line and column (1-based) where it is: the located
/// diagnostic profiles use (`FILE:LINE:COL: message`, compilers' form, so CI annotates the line),
/// since both files are read through the same `LocatedYAML`.
public typealias InventoryDiagnostic = ProfileDiagnostic
