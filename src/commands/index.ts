// Every command, in the order `--help` lists them. Each module declares its own flags, action and
// output; the heavy code behind an action is imported only when that action runs.
import type { Command } from 'commander';
import * as check from './check.js';
import * as completion from './completion.js';
import * as dashboardCommand from './dashboard.js';
import * as down from './down.js';
import * as env from './env.js';
import * as exportCommand from './export.js';
import * as faults from './faults.js';
import * as generate from './generate.js';
import * as images from './images.js';
import * as apiserver from './apiserver.js';
import * as init from './init.js';
import * as kind from './kind.js';
import * as logs from './logs.js';
import * as maintenance from './maintenance.js';
import * as member from './member.js';
import * as scale from './scale.js';
import * as setupHost from './setup-host.js';
import * as snapshot from './snapshot.js';
import * as status from './status.js';
import * as up from './up.js';
import * as upgrade from './upgrade.js';

export const COMMANDS: { register(program: Command): void }[] = [init, generate, up, down, status, dashboardCommand, env, logs, faults, check, snapshot, maintenance, member, scale, upgrade, kind, apiserver, exportCommand, images, setupHost, completion];
