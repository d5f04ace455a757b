// An independent MPPS peer for pacskit's tests: dcmjs-dimse (npm), in both roles.
//
//   node dcmjs_mpps.js scp PORT AET
//     An MPPS SCP (Verification, MPPS 1.2.840.10008.3.1.2.3.3, MPPS Retrieve ...3.4):
//     N-CREATE keeps a step (0x0111 for a UID it has), N-SET changes it (0x0112 for an
//     unknown UID, 0x0110 once its status is COMPLETED or DISCONTINUED), N-GET answers it.
//     Each request it serves is printed on stdout as one JSON line:
//     {"op", "calling", "uid", "status", "dataset"} with the dataset in DICOM JSON.
//   node dcmjs_mpps.js scu HOST PORT CALLED CALLING PLAN.json
//     Sends the requests of PLAN.json ([{"op": "create"|"set"|"get", "uid", "dataset",
//     "attributes"}], datasets in DICOM JSON) on one association and prints a JSON list
//     of the responses: {"op", "uid", "status", "comment", "dataset"}.
//
// The module is found in PACSKIT_NODE_MODULES (scripts/install-peers.sh installs it
// under .peers/node).
'use strict';

const path = require('path');
const fs = require('fs');
const modules = process.env.PACSKIT_NODE_MODULES || path.join(__dirname, '..', '..', '..', '.peers', 'node', 'node_modules');
const dimse = require(path.join(modules, 'dcmjs-dimse'));
const dcmjs = require(path.join(modules, 'dcmjs'));

const { DicomMetaDictionary } = dcmjs.data;
const { Dataset, Server, Scp, Client } = dimse;
const { NCreateRequest, NSetRequest, NGetRequest } = dimse.requests;
const { CEchoResponse, NCreateResponse, NSetResponse, NGetResponse } = dimse.responses;
const { PresentationContextResult, TransferSyntax, SopClass } = dimse.constants;

const MPPS = SopClass.ModalityPerformedProcedureStep;
const MPPS_RETRIEVE = '1.2.840.10008.3.1.2.3.4';
const FINAL = ['COMPLETED', 'DISCONTINUED'];

function toJson(elements) {
  if (!elements) return null;
  const plain = {};
  for (const [key, value] of Object.entries(elements)) {
    if (key !== '_vrMap') plain[key] = value;
  }
  return clean(DicomMetaDictionary.denaturalizeDataset(plain));
}

function clean(json) {
  for (const element of Object.values(json)) {
    if (element.Value === null || element.Value === undefined) {
      delete element.Value;
    } else if (element.vr === 'SQ') {
      element.Value.forEach(clean);
    }
  }
  return json;
}

function fromJson(json) {
  return DicomMetaDictionary.naturalizeDataset(json || {});
}

function print(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

class MppsScp extends Scp {
  constructor(socket, opts) {
    super(socket, opts);
    this.association = undefined;
  }

  associationRequested(association) {
    this.association = association;
    for (const c of association.getPresentationContexts()) {
      const context = association.getPresentationContext(c.id);
      const known = [SopClass.Verification, MPPS, MPPS_RETRIEVE].includes(context.getAbstractSyntaxUid());
      const syntax = context.getTransferSyntaxUids().find((ts) =>
        ts === TransferSyntax.ExplicitVRLittleEndian || ts === TransferSyntax.ImplicitVRLittleEndian);
      if (!known) {
        context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
      } else if (!syntax) {
        context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      } else {
        context.setResult(PresentationContextResult.Accept, syntax);
      }
    }
    this.sendAssociationAccept();
  }

  cEchoRequest(request, callback) {
    const response = CEchoResponse.fromRequest(request);
    response.setStatus(0);
    callback(response);
  }

  nCreateRequest(request, callback) {
    const uid = request.getAffectedSopInstanceUid();
    const elements = request.getDataset() ? request.getDataset().getElements() : {};
    const response = NCreateResponse.fromRequest(request);
    let status = 0;
    if (steps.has(uid)) {
      status = 0x0111;
    } else {
      steps.set(uid, { ...elements });
    }
    response.setStatus(status);
    this.log('N-CREATE', uid, status, elements);
    callback(response);
  }

  nSetRequest(request, callback) {
    const uid = request.getRequestedSopInstanceUid();
    const elements = request.getDataset() ? request.getDataset().getElements() : {};
    const response = NSetResponse.fromRequest(request);
    const stored = steps.get(uid);
    let status = 0;
    if (!stored) {
      status = 0x0112;
    } else if (FINAL.includes(stored.PerformedProcedureStepStatus)) {
      status = 0x0110;
      response.setErrorComment('Performed Procedure Step Object may no longer be updated');
    } else {
      for (const [key, value] of Object.entries(elements)) {
        if (key !== '_vrMap') stored[key] = value;
      }
    }
    response.setStatus(status);
    this.log('N-SET', uid, status, elements);
    callback(response);
  }

  nGetRequest(request, callback) {
    const uid = request.getRequestedSopInstanceUid();
    const response = NGetResponse.fromRequest(request);
    const stored = steps.get(uid);
    if (!stored) {
      response.setStatus(0x0112);
    } else {
      response.setDataset(new Dataset(stored));
      response.setStatus(0);
    }
    this.log('N-GET', uid, response.getStatus(), null);
    callback(response);
  }

  log(op, uid, status, elements) {
    print({ op, calling: this.association.getCallingAeTitle(), uid, status, dataset: toJson(elements) });
  }

  associationReleaseRequested() {
    this.sendAssociationReleaseResponse();
  }
}

const steps = new Map();

function serve(port, aet) {
  const server = new Server(MppsScp);
  server.on('networkError', (e) => process.stderr.write(`network error: ${e}\n`));
  server.listen(port);
  process.stderr.write(`dcmjs-dimse MPPS SCP ${aet} listening on ${port}\n`);
  const stop = () => { server.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function send(host, port, called, calling, planFile) {
  const plan = JSON.parse(fs.readFileSync(planFile, 'utf8'));
  const results = new Array(plan.length);
  const client = new Client();
  plan.forEach((step, index) => {
    let request;
    if (step.op === 'create') {
      request = new NCreateRequest(MPPS, step.uid);
    } else if (step.op === 'set') {
      request = new NSetRequest(MPPS, step.uid);
    } else {
      request = new NGetRequest(MPPS_RETRIEVE, step.uid, step.attributes || []);
    }
    if (step.dataset) request.setDataset(new Dataset(fromJson(step.dataset)));
    request.on('response', (response) => {
      const dataset = response.getDataset();
      results[index] = { op: step.op, uid: step.uid, status: response.getStatus(),
        comment: response.getErrorComment() || '', dataset: dataset ? toJson(dataset.getElements()) : null };
    });
    client.addRequest(request);
  });
  client.on('networkError', (e) => { process.stderr.write(`network error: ${e}\n`); process.exit(3); });
  client.on('closed', () => { print(results); });
  client.send(host, Number(port), calling, called);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'scp') {
  serve(Number(args[0]), args[1]);
} else if (mode === 'scu') {
  send(...args);
} else {
  process.stderr.write('usage: dcmjs_mpps.js scp PORT AET | scu HOST PORT CALLED CALLING PLAN.json\n');
  process.exit(2);
}
