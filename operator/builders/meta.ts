// What every child of a RecModel carries: its name, the model's namespace, labels and the controller reference.
import type { V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION, KIND } from '../api/v1alpha1/index.js';

/** The RecModel a child belongs to. */
export interface Owner {
  name: string;
  namespace: string;
  uid: string;
}

function ownerReference(owner: Owner): V1OwnerReference {
  return { apiVersion: API_VERSION, kind: KIND, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true };
}

/** Metadata of a child: its name, the model's namespace, labels and the controller reference to the RecModel. */
export function childMeta(owner: Owner, name: string, labels: Record<string, string>) {
  return { name, namespace: owner.namespace, labels, ownerReferences: [ownerReference(owner)] };
}
