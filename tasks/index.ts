/**
 * Distributed tasks: submit a command to any node and the mesh runs it. Each node runs tasks in its slots, idle nodes
 * steal queued tasks from busy ones, and every task's state lives in the replicated store at quorum. Execution is
 * at-least-once; an idempotency key makes a resubmission safe.
 *
 * @packageDocumentation
 */
export { TaskManager, type TaskManagerComponents, type TaskManagerInit, type ListOptions, type TaskLogs } from './manager.js'
export { Execution, BoundedBuffer, type ExecutionInit, type ExecutionResult } from './executor.js'
export { Launcher, directStarter, type ProcessStarter, type ProcessHandle, type LaunchSpec } from './launcher.js'
export { planSteal, chooseVictim, adopterFor, backlogOf, type PeerLoad, type StealPlanInput } from './scheduler.js'
export type { TaskStore, TasksMembership, TaskMember, TasksTransport, TaskFiles } from './ports.js'
export {
  normalizeSpec, statusOf, parseDuration, isTaskId, taskStates, terminalStates,
  type TaskSpec, type TaskRecord, type TaskState, type TaskStatus, type Attempt
} from './types.js'
export { InvalidTaskError, TaskNotFoundError, ExecNotAllowedError, TasksUnavailableError, LauncherGoneError } from './errors.js'
export { tasksService, tasksHandlers, rpcTasksTransport } from './service.js'
export * as constants from './constants.js'
