enum PerchONNXPlaceholder {}
