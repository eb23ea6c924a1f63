import PerchGraph

/// The part of a model that can be planned only once values computed while running exist: a
/// NonMaxSuppression over a detector's decoded boxes, a NonZero, a Reshape or Expand to a shape
/// read from a tensor, and every node after it that reads their results.
///
/// The parent session runs its steps, then hands the stage the values it waits for; the stage's
/// own `Session` treats them as known (NMS computes its selection while planning) and re-plans
/// only when they differ from the last run. A stage may end in a further stage, so a chain of
/// value-dependent nodes works one link at a time.
final class ValueDependentStage {
    /// Plans and runs the deferred nodes; its feeds are `feeds`' names.
    let session: Session
    /// The parent's buffers (arena or weights) holding the values the stage reads, alive until
    /// the parent's run ends.
    let feeds: [(name: String, view: TensorView)]

    init(session: Session, feeds: [(name: String, view: TensorView)]) {
        self.session = session
        self.feeds = feeds
    }

    /// Copies the waited-for values out of the parent's arena and runs the stage on them.
    func run() throws(EngineError) {
        var values = [String: Tensor]()
        for feed in feeds { values[feed.name] = feed.view.toTensor() }
        try session.bind(values)
        try session.execute()
    }
}
