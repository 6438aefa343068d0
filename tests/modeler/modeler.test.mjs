// The element templates in the real modeling UI: camunda-bpmn-js (the library inside Camunda
// Modeler and Web Modeler) in Debian's Chromium. Each template is chosen from the template
// chooser, each operation is picked in the properties panel's own dropdown, fields are typed
// into, and the exported BPMN XML is checked: job type, input mappings, headers.
//
// Environment: SCREENSHOT_DIR (write the properties-panel screenshots there), EXPORT_PATH
// (write, per job type, the input mappings the modeler produced, and the SMTP task's headers,
// which the Rust test feeds to the worker's own schemas and header parser).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundle, serve, launch, root } from './harness.mjs';

const templates = readdirSync(join(root, 'element-templates'))
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(root, 'element-templates', f), 'utf8')));
// The job templates pick an operation; the inbound templates (events and receive tasks the
// worker's discovery serves) load with them, apply to their own elements, and are read back
// property by property by tests/inbound/model/ours.rs.
const jobTemplates = templates.filter((t) => t.properties.some((p) => p.id === 'operation'));
const byProtocol = (name) => templates.find((t) => t.id.endsWith(`.${name}`));

// Values typed into the required text fields, by input target. Static text, as a modeler
// would type it, except criteria, which is always a FEEL expression.
const SAMPLES = {
  'authentication.username': 'someone@example.com',
  'authentication.password': '{{secrets.MAIL_PASSWORD}}',
  'authentication.accessToken': '{{secrets.MAIL_ACCESS_TOKEN}}',
  'server.host': 'mail.example.com',
  from: 'Support <support@example.com>',
  messageId: '<order-42@example.com>',
  targetFolder: 'Archive.Invoices',
  criteria: '{"operator": "OR", "criteria": [{"field": "SUBJECT", "value": "invoice"}, {"field": "FROM", "value": "billing@"}]}',
  // A message of three lines, base64.
  raw: 'RnJvbTogYUBleGFtcGxlLmNvbQ0KU3ViamVjdDogaGkNCg0KaGkNCg==',
  smtp: '{"server": {"host": "smtp.example.com", "port": 587, "security": "starttls"}}',
};

let browser;
let served;
const exported = {};

before(async () => {
  const dist = mkdtempSync(join(tmpdir(), 'modeler-page-'));
  await bundle(dist);
  served = await serve(dist);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  served?.server.close();
  if (process.env.EXPORT_PATH) {
    writeFileSync(process.env.EXPORT_PATH, JSON.stringify(exported, null, 2));
  }
});

/** A fresh modeler page with the templates loaded; fails on any request off loopback. */
async function openModeler() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1750 } });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const problems = [];
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(served.origin) && !url.startsWith('data:')) {
      problems.push(`request off loopback: ${url}`);
    }
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(served.origin);
  assert.deepEqual(await page.evaluate(() => window.ready), [], 'the diagram imports cleanly');
  await page.evaluate((list) => {
    const modeler = window.modeler;
    modeler.get('elementTemplates').setEngines({ camunda: '8.8.0' });
    modeler.get('elementTemplatesLoader').setTemplates(list);
  }, templates);
  assert.deepEqual(await page.evaluate(() => window.templateErrors), []);
  return { page, problems, close: () => context.close() };
}

/** Applies a template to the task the way a modeler does: Select, then the chooser entry. */
async function applyFromChooser(page, template) {
  await page.click('[data-element-id="Task_Mail"]');
  await page.click('.bio-properties-panel-select-template-button');
  await page.click(`.djs-popup.element-template-chooser li[data-id="apply-template-${template.id}"]`);
  // The panel header names the applied template (upper-cased by CSS only).
  await page.waitForFunction(
    (name) => document.querySelector('.bio-properties-panel-header-type')?.textContent === name,
    template.name,
  );
}

/** Opens a template group unless it is open already (groups remember their state). */
async function openGroup(page, groupId) {
  const group = page.locator(`[data-group-id="group-ElementTemplates__CustomProperties-${groupId}"]`);
  if ((await group.locator('.bio-properties-panel-group-entries.open').count()) === 0) {
    await group.locator('.bio-properties-panel-group-header').click();
  }
  return group;
}

/** The task as the exported XML has it. */
async function exportTask(page) {
  return page.evaluate(async () => {
    const { xml } = await window.modeler.saveXML({ format: true });
    const doc = new DOMParser().parseFromString(xml, 'application/xml');
    const ZEEBE = 'http://camunda.org/schema/zeebe/1.0';
    const task = doc.getElementsByTagNameNS('http://www.omg.org/spec/BPMN/20100524/MODEL', 'serviceTask')[0];
    const definition = task.getElementsByTagNameNS(ZEEBE, 'taskDefinition')[0];
    const inputs = {};
    for (const input of task.getElementsByTagNameNS(ZEEBE, 'input')) {
      inputs[input.getAttribute('target')] = input.getAttribute('source');
    }
    const headers = {};
    for (const header of task.getElementsByTagNameNS(ZEEBE, 'header')) {
      headers[header.getAttribute('key')] = header.getAttribute('value');
    }
    return {
      xml,
      type: definition?.getAttribute('type'),
      retries: definition?.getAttribute('retries'),
      template: task.getAttributeNS(ZEEBE, 'modelerTemplate'),
      templateVersion: task.getAttributeNS(ZEEBE, 'modelerTemplateVersion'),
      inputs,
      headers,
    };
  });
}

/** Whether a template property is shown for the given values of the properties it names. */
function shown(property, values) {
  const condition = property.condition;
  if (!condition) return true;
  return (condition.allMatch ?? [condition]).every((c) =>
    'equals' in c ? values[c.property] === c.equals : c.oneOf.includes(values[c.property]));
}

/** The input targets the template promises for an operation, with default choices. */
function expectedTargets(template, operation, overrides = {}) {
  const values = { operation, ...overrides };
  for (const p of template.properties) {
    if (p.type === 'Dropdown' && p.id && !(p.id in values)) values[p.id] = p.value;
  }
  return [...new Set(template.properties
    .filter((p) => p.binding.type === 'zeebe:input' && shown(p, values))
    .map((p) => p.binding.name))].sort();
}

/** The panel's control (input, select, text area or FEEL editor) labelled so in a group. */
function control(group, label) {
  return group.getByLabel(label, { exact: true }).first();
}

/** Types a value into a text, text area or FEEL field of the panel. A FEEL-only field shows
 * the leading '=' itself, so it is typed without. */
async function typeInto(group, property, value) {
  await control(group, property.label).fill(value);
}

test('the templates load without errors and suit Camunda 8.8', async () => {
  const { page, problems, close } = await openModeler();
  const ids = await page.evaluate(() => {
    const modeler = window.modeler;
    const task = modeler.get('elementRegistry').get('Task_Mail');
    return {
      all: modeler.get('elementTemplates').getAll().map((t) => t.id).sort(),
      compatible: modeler.get('elementTemplates').getCompatible(task).map((t) => t.id).sort(),
    };
  });
  assert.deepEqual(ids.all, templates.map((t) => t.id).sort());
  assert.deepEqual(ids.compatible, jobTemplates.map((t) => t.id).sort(), 'a task takes the job templates');
  assert.deepEqual(problems, []);
  await close();
});

for (const template of jobTemplates) {
  const operations = template.properties.find((p) => p.id === 'operation').choices;

  test(`${template.name}: chosen from the chooser, every operation picked in the panel`, async () => {
    const { page, problems, close } = await openModeler();
    await applyFromChooser(page, template);
    const operationGroup = await openGroup(page, 'operation');
    const select = control(operationGroup, 'Operation');
    for (const choice of operations) {
      await select.selectOption(choice.value);
      let task = await exportTask(page);
      assert.equal(task.type, choice.value, 'the operation sets the job type');
      assert.equal(task.retries, '3');
      assert.equal(task.template, template.id);
      assert.equal(task.templateVersion, String(template.version));
      assert.equal(task.headers.elementTemplateId, template.id);
      assert.equal(task.headers.elementTemplateVersion, String(template.version));
      assert.equal(task.headers.retryBackoff, 'PT30S');
      assert.deepEqual(Object.keys(task.inputs).sort(), expectedTargets(template, choice.value),
        `${choice.value}: exactly the operation's fields are mapped`);

      // Fill every required text field through the panel, group by group.
      const values = { operation: choice.value, 'authentication.type': 'simple' };
      for (const property of template.properties) {
        const target = property.binding.name;
        if (!property.constraints?.notEmpty || !shown(property, values)) continue;
        assert.ok(target in SAMPLES, `a sample value for ${target}`);
        const group = await openGroup(page, property.group);
        await typeInto(group, property, SAMPLES[target]);
      }
      task = await exportTask(page);
      for (const property of template.properties) {
        const target = property.binding.name;
        if (!property.constraints?.notEmpty || !shown(property, values)) continue;
        const expected = property.feel === 'required' ? `=${SAMPLES[target]}` : SAMPLES[target];
        assert.equal(task.inputs[target], expected, `${choice.value}: ${target} as typed`);
      }
      exported[choice.value] = task.inputs;
    }
    assert.deepEqual(problems, []);
    await close();
  });
}

test('SMTP: security sets the port, FEEL lists for addresses, output and error headers', async () => {
  const template = byProtocol('smtp');
  const { page, problems, close } = await openModeler();
  await applyFromChooser(page, template);
  let task = await exportTask(page);
  assert.equal(task.inputs['server.security'], 'starttls');
  assert.equal(task.inputs['server.port'], '=587', 'a number, not the text "587"');

  const server = await openGroup(page, 'server');
  await control(server, 'Security').selectOption('tls');
  task = await exportTask(page);
  assert.equal(task.inputs['server.port'], '=465');
  await control(server, 'Security').selectOption('none');
  assert.equal((await exportTask(page)).inputs['server.port'], '=25');
  await control(server, 'Port').fill('2525');
  assert.equal((await exportTask(page)).inputs['server.port'], '=2525');
  // A port the user typed stays when the security changes; only untouched defaults follow.
  await control(server, 'Security').selectOption('starttls');
  assert.equal((await exportTask(page)).inputs['server.port'], '=2525');

  const message = await openGroup(page, 'message');
  const to = template.properties.find((p) => p.id === 'to');
  await typeInto(message, to, '=[customer.email, "ops@example.com"]');
  await typeInto(message, template.properties.find((p) => p.id === 'subject'), 'Your order');
  const output = await openGroup(page, 'output');
  await control(output, 'Result variable').fill('sent');
  const property = (id) => template.properties.find((p) => p.id === id);
  assert.equal(property('resultExpression').feel, 'required');
  await typeInto(output, property('resultExpression'), '{ id: response.messageId }');
  const errors = await openGroup(page, 'error');
  await control(errors, 'Throw as BPMN errors').fill('RECIPIENTS_REJECTED');
  assert.equal(property('errorExpression').feel, 'required');
  await typeInto(errors, property('errorExpression'),
    'if error.code = "RECIPIENTS_REJECTED" then bpmnError("BOUNCED", error.message) else null');

  task = await exportTask(page);
  assert.equal(task.inputs.to, '=[customer.email, "ops@example.com"]');
  assert.equal(task.inputs.subject, 'Your order');
  assert.equal(task.headers.resultVariable, 'sent');
  assert.equal(task.headers.bpmnErrors, 'RECIPIENTS_REJECTED');
  // FEEL-only fields keep the leading '=' the panel shows; the worker reads both forms.
  assert.equal(task.headers.resultExpression, '={ id: response.messageId }');
  assert.equal(task.headers.errorExpression,
    '=if error.code = "RECIPIENTS_REJECTED" then bpmnError("BOUNCED", error.message) else null');
  exported.headers = task.headers;

  const auth = await openGroup(page, 'authentication');
  await control(auth, 'Type').selectOption('oauth2');
  task = await exportTask(page);
  assert.ok(!('authentication.password' in task.inputs), 'no password field for OAuth');
  assert.ok('authentication.accessToken' in task.inputs);
  // The worker obtains the token itself: endpoint, client and secret, and the mechanism.
  const field = (id) => template.properties.find((p) => p.id === `authentication.${id}`);
  const endpoint = 'https://login.microsoftonline.com/contoso/oauth2/v2.0/token';
  await typeInto(auth, field('tokenEndpoint'), endpoint);
  await typeInto(auth, field('clientId'), 'mail-app');
  await typeInto(auth, field('clientSecret'), '{{secrets.M365_SECRET}}');
  await typeInto(auth, field('scope'), 'https://outlook.office365.com/.default');
  await typeInto(auth, field('refreshToken'), '{{secrets.M365_REFRESH}}');
  await control(auth, field('mechanism').label).selectOption('OAUTHBEARER');
  assert.match(field('clientSecret').placeholder, /secrets\./);
  task = await exportTask(page);
  assert.equal(task.inputs['authentication.tokenEndpoint'], endpoint);
  assert.equal(task.inputs['authentication.clientId'], 'mail-app');
  assert.equal(task.inputs['authentication.clientSecret'], '{{secrets.M365_SECRET}}');
  assert.equal(task.inputs['authentication.scope'], 'https://outlook.office365.com/.default');
  assert.equal(task.inputs['authentication.refreshToken'], '{{secrets.M365_REFRESH}}');
  assert.equal(task.inputs['authentication.mechanism'], 'OAUTHBEARER');
  await control(auth, 'Type').selectOption('simple');
  task = await exportTask(page);
  assert.ok(!('authentication.tokenEndpoint' in task.inputs), 'no OAuth fields for a password');
  await control(auth, 'Type').selectOption('none');
  task = await exportTask(page);
  assert.ok(!('authentication.username' in task.inputs), 'no login for an open relay');

  if (process.env.SCREENSHOT_DIR) {
    await control(auth, 'Type').selectOption('simple');
    await openGroup(page, 'authentication');
    await typeInto(auth, template.properties.find((p) => p.id === 'authentication.username'),
      'support@example.com');
    await typeInto(auth, template.properties.find((p) => p.id === 'authentication.password'),
      '{{secrets.MAIL_PASSWORD}}');
    await control(server, 'Host').fill('smtp.example.com');
    await control(server, 'Port').fill('587');
    await typeInto(message, template.properties.find((p) => p.id === 'from'),
      'Support <support@example.com>');
    await typeInto(message, template.properties.find((p) => p.id === 'body'),
      'Thank you for your order.');
    await screenshot(page, 'template-smtp-send.png');
  }
  assert.deepEqual(problems, []);
  await close();
});

test('IMAP: a saved task opens again with its operation and fields', async () => {
  const template = byProtocol('imap');
  const { page, problems, close } = await openModeler();
  await applyFromChooser(page, template);
  const operationGroup = await openGroup(page, 'operation');
  await control(operationGroup, 'Operation').selectOption('email:imap:search:1');
  const mailbox = await openGroup(page, 'mailbox');
  await typeInto(mailbox, template.properties.find((p) => p.id === 'criteria'), SAMPLES.criteria);
  await control(mailbox, 'Folder').fill('Invoices');
  const before = await exportTask(page);

  const warnings = await page.evaluate(async (xml) => {
    const { warnings } = await window.modeler.importXML(xml);
    return warnings.map(String);
  }, before.xml);
  assert.deepEqual(warnings, []);
  await page.click('[data-element-id="Task_Mail"]');
  const reopened = await openGroup(page, 'operation');
  assert.equal(await control(reopened, 'Operation').inputValue(), 'email:imap:search:1');
  const mailboxAgain = await openGroup(page, 'mailbox');
  assert.equal(await control(mailboxAgain, 'Folder').inputValue(), 'Invoices');
  assert.deepEqual((await exportTask(page)).inputs, before.inputs);

  if (process.env.SCREENSHOT_DIR) {
    await control(reopened, 'Operation').selectOption('email:imap:move:1');
    const move = await openGroup(page, 'mailbox');
    await typeInto(move, template.properties.find((p) => p.id === 'messageId'), '=mail.messageId');
    await typeInto(move, template.properties.find((p) => p.id === 'targetFolder'), 'Archive.Invoices');
    await page.evaluate(() => {
      for (const group of ['authentication', 'server', 'operation']) {
        const header = document.querySelector(
          `[data-group-id="group-ElementTemplates__CustomProperties-${group}"] .bio-properties-panel-group-header`);
        const open = header?.parentElement.querySelector('.bio-properties-panel-group-entries.open');
        if (open && group !== 'operation') header.click();
      }
    });
    await screenshot(page, 'template-imap-move.png');
  }
  assert.deepEqual(problems, []);
  await close();
});

test('Camunda 8.8: reads return attachments as documents, sends take document references', async () => {
  for (const [protocol, operation] of [['imap', 'email:imap:read:1'], ['pop3', 'email:pop3:read:1']]) {
    const template = byProtocol(protocol);
    const { page, problems, close } = await openModeler();
    await applyFromChooser(page, template);
    const operationGroup = await openGroup(page, 'operation');
    await control(operationGroup, 'Operation').selectOption(operation);
    let task = await exportTask(page);
    assert.equal(task.inputs.attachmentsAs, 'inline', `${operation}: inline by default`);
    const property = template.properties.find((p) => p.id === 'attachmentsAs');
    const group = await openGroup(page, property.group);
    await control(group, property.label).selectOption('document');
    task = await exportTask(page);
    assert.equal(task.inputs.attachmentsAs, 'document', `${operation}: documents chosen`);
    assert.deepEqual(problems, []);
    await close();
  }
  // The list a form's file picker leaves in a variable goes into the attachments as it is.
  const smtp = byProtocol('smtp');
  const { page, problems, close } = await openModeler();
  await applyFromChooser(page, smtp);
  const attachments = smtp.properties.find((p) => p.id === 'attachments');
  assert.match(attachments.tooltip, /document references/);
  const group = await openGroup(page, attachments.group);
  await typeInto(group, attachments, 'invoiceUpload');
  const task = await exportTask(page);
  assert.equal(task.inputs.attachments, '=invoiceUpload');
  assert.deepEqual(problems, []);
  await close();
});

test('the example processes open with the templates applied', async () => {
  const dir = join(root, 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.bpmn')).sort();
  assert.ok(files.length >= 2);
  const { page, problems, close } = await openModeler();
  for (const file of files) {
    const result = await page.evaluate(async (xml) => {
      const { warnings } = await window.modeler.importXML(xml);
      const modeler = window.modeler;
      const tasks = modeler.get('elementRegistry').filter((e) => e.type === 'bpmn:ServiceTask');
      return {
        warnings: warnings.map(String),
        tasks: tasks.map((task) => {
          const values = task.businessObject.extensionElements?.values ?? [];
          const io = values.find((v) => v.$type === 'zeebe:IoMapping');
          return {
            id: task.id,
            template: modeler.get('elementTemplates').get(task)?.id ?? null,
            modelerTemplate: task.businessObject.get('zeebe:modelerTemplate') ?? null,
            type: values.find((v) => v.$type === 'zeebe:TaskDefinition')?.type,
            inputs: Object.fromEntries((io?.inputParameters ?? []).map((i) => [i.target, i.source ?? null])),
          };
        }),
      };
    }, readFileSync(join(dir, file), 'utf8'));
    assert.deepEqual(result.warnings, [], file);
    assert.ok(result.tasks.length > 0, `${file} has service tasks`);
    for (const task of result.tasks) {
      // An example modelled with Camunda's own Email template, served by the drop-in: its
      // template is Camunda's (checked by the examples' lint), not one of ours.
      if (task.modelerTemplate === 'io.camunda.connectors.email.v1') {
        assert.equal(task.type, 'io.camunda:email:1', `${file}: ${task.id} keeps Camunda's job type`);
        continue;
      }
      const template = templates.find((t) => t.id === task.template);
      assert.ok(template, `${file}: ${task.id} uses one of our templates (found ${task.template})`);
      const choices = { 'server.security': task.inputs['server.security'],
        'authentication.type': task.inputs['authentication.type'] };
      assert.deepEqual(Object.keys(task.inputs).sort(), expectedTargets(template, task.type, choices),
        `${file}: ${task.id} maps exactly the fields the template gives ${task.type}`);
    }
  }
  assert.deepEqual(problems, []);
  await close();
});

async function screenshot(page, name) {
  mkdirSync(process.env.SCREENSHOT_DIR, { recursive: true });
  await page.locator('#properties').screenshot({ path: join(process.env.SCREENSHOT_DIR, name) });
}
