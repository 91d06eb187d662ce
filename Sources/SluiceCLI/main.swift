import HTTPPipelines
import Pipelines
import SluiceCommand

// The `sluice` executable: the command of the SluiceCommand library with the ready pipelines of this repository,
// http-post included. A package of your own does the same with its pipelines added (README: "Your own CLI").
await SluiceCommand.main(pipelines: PipelineRegistry.all + [HTTPPost.self])
