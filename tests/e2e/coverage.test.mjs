// The bundled guardrails on every message kind, not only tool calls: a resource read
// carrying PII comes back redacted, one carrying an injection is blocked, a prompt with a
// hidden instruction is blocked, and an upstream's elicitation asking the user for a
// password never reaches the user (an honest one does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { FIXTURES, gatewayConfig, luaServer, writeConfig, withGateway, httpClient, textOf } from './helpers.mjs';

const policy = (guardrails, block) => ({ enabled: true, policy_name: 'default', additional_config: {}, guardrails, block });

test('pii and injection guard resources, prompts and the upstream\'s requests to the user', async () => {
  const server = luaServer('leaky', join(FIXTURES, 'servers/leaky.lua'), {
    sharing: 'per_session', enable_tool_guardrails: true,
    input_guardrails_policy: policy(['pii', 'injection'], ['injection_attack']),
    output_guardrails_policy: policy(['pii', 'injection'], ['injection_attack', 'credential_request']),
  });
  await withGateway(writeConfig(gatewayConfig([server], { mode: 'aggregate' })), async (gw) => {
    const c = await httpClient(gw.url, { capabilities: { elicitation: {} } });
    const asked = [];
    c.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(req.params.message);
      return { action: 'accept', content: { name: 'Q3' } };
    });
    const contacts = await c.readResource({ uri: 'leak://contacts' });
    assert.equal(contacts.contents[0].text, 'Call Jane at <EMAIL_1>');
    await assert.rejects(c.readResource({ uri: 'leak://notes' }), /Blocked by guardrail injection/);
    await assert.rejects(c.getPrompt({ name: 'leaky__review', arguments: { topic: 'Q3' } }), /Blocked by guardrail injection/);
    const refused = JSON.parse(textOf(await c.callTool({ name: 'leaky__ask_password', arguments: {} })));
    assert.match(refused.error.message, /refused by guardrail injection/);
    const honest = JSON.parse(textOf(await c.callTool({ name: 'leaky__ask_name', arguments: {} })));
    assert.equal(honest.result.content.name, 'Q3');
    assert.deepEqual(asked, ['What name should the report use?'], 'the password request never reached the user');
    await c.close();
  });
});
