// A placement that can never hold with the device default, or that would reach control-plane nodes, is caught
// when planning (PlacementConflict naming the field), not left Pending.
import { describe, expect, it } from 'vitest';
import type { RecModel } from '../../../operator/api/v1alpha1/index.js';
import { DEFAULT_BUILDER_CONFIG } from '../../../operator/builders/config.js';
import { placementConflicts } from '../../../operator/builders/placement.js';
import { prepareNow } from '../../../operator/controller/reconcile/prepare.js';
import { specOf } from '../fixtures.js';

const cfg = DEFAULT_BUILDER_CONFIG;
const conflicts = (placement: Record<string, unknown>) => placementConflicts(specOf({ placement } as never).placement, cfg);
const gpuTerm = (operator: string, values?: string[]) => ({
  nodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchExpressions: [{ key: 'nvidia.com/gpu.present', operator, ...(values ? { values } : {}) }] }],
    },
  },
});

describe('placement conflicts', () => {
  it('a nodeSelector on the GPU label that the device contradicts', () => {
    expect(conflicts({ sparse: { nodeSelector: { 'nvidia.com/gpu.present': 'true' } } })).toEqual([
      'spec.placement.sparse.nodeSelector["nvidia.com/gpu.present"]: "true" contradicts device cpu ' +
        '(which requires no nvidia.com/gpu.present label): no node can match both',
    ]);
    expect(conflicts({ main: { device: 'gpu', nodeSelector: { 'nvidia.com/gpu.present': 'false' } } })[0]).toMatch(
      /^spec.placement.main.nodeSelector.*contradicts device gpu/,
    );
    expect(conflicts({ main: { device: 'gpu', nodeSelector: { 'nvidia.com/gpu.present': 'true', zone: 'a' } } })).toEqual([]);
  });

  it('required node-affinity terms on the GPU label, by operator', () => {
    expect(conflicts({ sparse: { affinity: gpuTerm('Exists') } })[0]).toMatch(
      /nodeSelectorTerms\[0\]\.matchExpressions\[0\]: nvidia.com\/gpu.present Exists \[\] contradicts device cpu/,
    );
    expect(conflicts({ sparse: { affinity: gpuTerm('DoesNotExist') } })).toEqual([]);
    expect(conflicts({ main: { device: 'gpu', affinity: gpuTerm('In', ['false']) } })).toHaveLength(1);
    expect(conflicts({ main: { device: 'gpu', affinity: gpuTerm('DoesNotExist') } })).toHaveLength(1);
    expect(conflicts({ main: { device: 'gpu', affinity: gpuTerm('In', ['true']) } })).toEqual([]);
  });

  it('control-plane nodes: their label, their taint, or a toleration of every taint, unless the operator allows it', () => {
    const p = specOf({
      placement: {
        main: { nodeSelector: { 'node-role.kubernetes.io/control-plane': '' } },
        sparse: { tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }, { operator: 'Exists' }] },
      },
    } as never).placement;
    expect(placementConflicts(p, cfg)).toEqual([
      'spec.placement.main.nodeSelector["node-role.kubernetes.io/control-plane"]: model pods may not be placed on control-plane nodes',
      'spec.placement.sparse.tolerations[0]: node-role.kubernetes.io/control-plane: model pods may not be placed on control-plane nodes',
      "spec.placement.sparse.tolerations[1]: tolerating every taint would let model pods onto control-plane nodes; name the taint's key",
    ]);
    expect(placementConflicts(p, { ...cfg, allowControlPlane: true })).toEqual([]);
  });

  it('refuses the model with Planned=False PlacementConflict before planning', () => {
    const rm = {
      apiVersion: 'recshard.io/v1alpha1',
      kind: 'RecModel',
      metadata: { name: 'm', namespace: 'ns', uid: 'u', generation: 1 },
      spec: { ...specOf({}), placement: { sparse: { nodeSelector: { 'nvidia.com/gpu.present': 'true' } } } },
    } as unknown as RecModel;
    const p = prepareNow(rm, cfg);
    expect(!p.ok && p.outcome).toMatchObject({
      ok: false,
      reason: 'PlacementConflict',
      message: expect.stringContaining('spec.placement.sparse.nodeSelector'),
    });
  });
});
