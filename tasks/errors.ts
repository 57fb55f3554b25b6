import { MeshError } from '../lib/errors.js'

/** The spec is malformed, or asks for something no member offers. Code BAD_REQUEST. */
export class InvalidTaskError extends MeshError {
  constructor (message: string) { super('BAD_REQUEST', message); this.name = 'InvalidTaskError' }
}
/** No task with this id in the store. Code NOT_FOUND. */
export class TaskNotFoundError extends MeshError {
  constructor (id: string) { super('NOT_FOUND', `no task ${id}`); this.name = 'TaskNotFoundError' }
}
/** This node may not run commands (started without --allow-exec) and nothing in the mesh may. Code FORBIDDEN. */
export class ExecNotAllowedError extends MeshError {
  constructor (message: string) { super('FORBIDDEN', message); this.name = 'ExecNotAllowedError' }
}
/** The tasks subsystem is stopping or not started. Code UNAVAILABLE. */
export class TasksUnavailableError extends MeshError {
  constructor (message: string) { super('UNAVAILABLE', message); this.name = 'TasksUnavailableError' }
}
/** The helper process that starts tasks' processes died while they ran: their ends could not be seen. Code INTERNAL. */
export class LauncherGoneError extends MeshError {
  constructor () { super('INTERNAL', 'the process launcher died while the task ran; the task\'s process group was killed'); this.name = 'LauncherGoneError' }
}
/** A stored task record that is not one (anyone with KV write access can put bytes under the tasks prefix). Code INTERNAL. */
export class MalformedRecordError extends MeshError {
  constructor (message: string) { super('INTERNAL', message); this.name = 'MalformedRecordError' }
}
