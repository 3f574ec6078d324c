// `etcd-lab member list|replace` and `etcd-lab leader`: membership on a running lab.
import type { Command } from 'commander';
import { ends, finish, loadOptionsFrom, outputOptions, reporter, resultCommand, seconds, specOptions, type OutputFlags, type SpecFlags } from './shared.js';
import { tableLines } from '../ui/table.js';

export function register(program: Command): void {
  const member = program.command('member').description("the cluster's membership, as etcd sees it, and replacing a member");

  resultCommand(
    member.command('list'),
    'what etcd thinks (IDs, names, peer and client URLs, voter or learner), beside what the lab expects',
    async (load, progress) => (await import('../lab/membership.js')).memberList(load, progress),
    (result) =>
      tableLines([
        ['ID', 'NAME', 'PEER URLS', 'CLIENT URLS', 'ROLE', 'LAB'],
        ...result.members.map((m) => [m.id ?? '-', m.name || '(not started)', m.peerUrls.join(','), m.clientUrls.join(',') || '-', m.role, m.expected]),
      ]),
    'listing',
  );

  outputOptions(specOptions(member.command('replace')))
    .description('replace a member whose container or data is gone: member remove, member add (learner), start with existing state, promote once caught up')
    .argument('<member>', 'the member to replace (etcd1, etcd2, …)')
    .option('--force', 'replace it even though it is healthy (its data is thrown away)')
    .option('--timeout <seconds>', 'how long the new member may take to catch up and serve', '120')
    .action(ends(async (name: string, flags: SpecFlags & OutputFlags & { force?: boolean; timeout: string }) => {
      const { replaceMember } = await import('../lab/membership.js');
      const result = await replaceMember({ ...loadOptionsFrom(flags), member: name, force: flags.force, timeoutMs: seconds(flags.timeout, '--timeout') }, await reporter(flags));
      return finish(flags, result, () => [`${result.member} replaced in ${(result.elapsedMs / 1000).toFixed(1)}s: member ${result.oldId ?? '(none)'} removed, ${result.newId} added, caught up and promoted`]);
    }));

  outputOptions(specOptions(program.command('leader')))
    .description("move leadership to a member (etcd's move-leader) and show the election")
    .argument('<member>', 'the member to lead (etcd1, etcd2, …)')
    .action(ends(async (name: string, flags: SpecFlags & OutputFlags) => {
      const { moveLeadership } = await import('../lab/membership.js');
      const result = await moveLeadership({ ...loadOptionsFrom(flags), member: name }, await reporter(flags));
      return finish(flags, result, () => [
        result.before === result.leader
          ? `${result.leader} already leads (term ${result.term})`
          : `${result.before} was leader: ${result.leader} leads at term ${result.term}, ${(result.afterMs / 1000).toFixed(1)}s later`,
      ]);
    }));
}
