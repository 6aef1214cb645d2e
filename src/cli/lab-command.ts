/** `membrane lab up|down|exec`. */
import type { Command } from 'commander';
import { readFileSync, existsSync } from 'node:fs';
import { labDown, labExec, labUp, parseLabSpec, readLabState, type EndpointRegistrar } from '../lab/index.js';
import { AgentClient } from './client.js';
import { checkLabVisibility } from './lab-visibility.js';
import { readInputFile } from './input-file.js';

export function registrarFor(client: AgentClient): EndpointRegistrar {
  return {
    register: async (ep) => {
      await client.request('PUT', '/v1/endpoints', ep);
    },
    deregister: async (namespace, name) => {
      await client.request('DELETE', `/v1/endpoints/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
    },
    registerService: async (svc) => {
      await client.request('PUT', '/v1/services', svc);
    },
    deregisterService: async (namespace, name) => {
      await client.request('DELETE', `/v1/services/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
    },
  };
}

export async function labUpCommand(file: string, socket: string): Promise<void> {
  const spec = parseLabSpec(readInputFile(file, 'MEMBRANE_ERR_LAB_SPEC'), file);
  checkLabVisibility(spec, file);
  const client = new AgentClient(socket);
  try {
    const config = await client.request<{ netns: string | null }>('GET', '/v1/config');
    const state = await labUp(spec, config.netns, registrarFor(client));
    for (const p of state.pods) process.stdout.write(`pod ${p.namespace}/${p.name}\t${p.ip}\t${p.ifname}\n`);
    if (state.world) process.stdout.write(`world ${state.world.netns}\t${state.world.addresses.join(',')}\t${state.world.ifname}\n`);
  } finally {
    await client.close();
  }
}

export async function labDownCommand(nameOrFile: string, socket: string): Promise<void> {
  const name = existsSync(nameOrFile) ? parseLabSpec(readFileSync(nameOrFile, 'utf8'), nameOrFile).name : nameOrFile;
  const state = readLabState(name);
  if (!state) {
    process.stdout.write(`lab ${name} is not up\n`);
    return;
  }
  const client = new AgentClient(socket);
  try {
    // The agent may already be gone; the namespaces go regardless.
    const reachable = await client.request('GET', '/v1/healthz').then(() => true, () => false);
    await labDown(state, reachable ? registrarFor(client) : null);
  } finally {
    await client.close();
  }
  process.stdout.write(`lab ${name} removed\n`);
}

export function labCommands(program: Command, socket: () => string): void {
  const lab = program.command('lab').description('local lab: pods as network namespaces on this machine').enablePositionalOptions();
  lab
    .command('up <file>')
    .description('create the pods of a lab spec and register them with the agent')
    .action(async (file: string) => labUpCommand(file, socket()));
  lab
    .command('down <name-or-file>')
    .description('remove a lab\'s pods, servers and endpoints')
    .action(async (name: string) => labDownCommand(name, socket()));
  lab
    .command('exec <pod> <command...>')
    .description('run a command inside a lab pod (like kubectl exec)')
    .passThroughOptions()
    .action((pod: string, command: string[]) => {
      // `lab exec POD -- curl -s …`: the `--` only ends our options, as with kubectl.
      process.exitCode = labExec(pod, command[0] === '--' ? command.slice(1) : command);
    });
}
