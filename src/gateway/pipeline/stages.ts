/**
 * The stage lists, in order. A capability adds a file and a line here (or, from outside, through
 * `GatewayDeps.stages`), never a branch inside another stage. `end` runs when the answer or stream
 * of a model call has ended.
 */
import type { Stage } from './runner.js';
import { authenticate } from './stages/authenticate.js';
import { authorize } from './stages/authorize.js';
import { cache } from './stages/cache.js';
import { contextChecks } from './stages/context-checks.js';
import { deprecations } from './stages/deprecations.js';
import { forward } from './stages/forward.js';
import { limit } from './stages/limit.js';
import { describeKey } from './stages/me.js';
import { authorizeListing, listModels } from './stages/models.js';
import { observeAbuse, observeAbuseStart } from './stages/observe-abuse.js';
import { observeOutput } from './stages/observe-output.js';
import { parse } from './stages/parse.js';
import { parseTask } from './stages/parse-task.js';
import { quarantine } from './stages/quarantine.js';
import { record } from './stages/record.js';
import { routePins } from './stages/route-pins.js';
import { screenExternal } from './stages/screen-external.js';
import { screenInput } from './stages/screen-input.js';
import { screenOutput } from './stages/screen-output.js';
import { settle } from './stages/settle.js';
import { tierMaxTokens } from './stages/tier-max-tokens.js';

export interface StageLists {
  /** The model endpoints (`/v1/chat/completions`, `/v1/messages`, ...). */
  model: Stage[];
  /** `/v1/tasks/:name`: the same path with the task's own parse. */
  task: Stage[];
  /** Run when a model call's answer or stream has ended. */
  end: Stage[];
  /** `GET /v1/models`. */
  models: Stage[];
  /** `GET /sluice/v1/me`. */
  me: Stage[];
}

/** The stages after parsing that every model call goes through, up to the answer. */
function callStages(): Stage[] {
  return [
    tierMaxTokens,
    contextChecks,
    quarantine,
    authorize,
    routePins,
    deprecations,
    screenInput,
    screenExternal,
    cache,
    limit,
    observeAbuseStart,
    forward,
    screenOutput,
  ];
}

export function defaultStages(): StageLists {
  return {
    model: [authenticate, parse, ...callStages()],
    task: [authenticate, parseTask, ...callStages()],
    end: [settle, observeOutput, record, observeAbuse],
    models: [authenticate, authorizeListing, listModels],
    me: [authenticate, describeKey],
  };
}
